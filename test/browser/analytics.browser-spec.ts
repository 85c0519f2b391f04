import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fillStore, signIn, startConsoleRig, type ConsoleRig } from './support/console-browser.js';

/** Analytics in the console: every figure that drills through leads to a calls list whose exact total is that figure. */
let rig: ConsoleRig;
beforeAll(async () => {
  rig = await startConsoleRig();
  // 30 days of history ending 2026-02-01.
  await fillStore(rig, { calls: 120 });
});
afterAll(async () => rig?.close());

// A window that cuts hours in half, so that the rollups and the edge legs both serve it.
const SINCE = '2026-01-03T05:30:00.000Z';
const UNTIL = '2026-01-29T17:45:00.000Z';

type Summary = { totals: { legs: number; answered: number; outcomes: Record<string, number> }; groups: { key: string | null; legs: number }[] };

describe('analytics', () => {
  it('shows the KPI tiles of the period and of the period before, and a chart', async () => {
    const page = await rig.newPage();
    await signIn(page, rig.base, `/console/analytics?since=${SINCE}&until=${UNTIL}&groupBy=provider&interval=day`);
    await page.getByTestId('tiles').waitFor();
    const now = await rig.api<Summary>(`/v1/analytics/summary?since=${SINCE}&until=${UNTIL}`);
    const span = Date.parse(UNTIL) - Date.parse(SINCE);
    const before = await rig.api<Summary>(`/v1/analytics/summary?since=${new Date(Date.parse(SINCE) - span).toISOString()}&until=${SINCE}`);
    const legsTile = page.locator('[data-tile="Legs"]');
    expect(await legsTile.locator('.v').textContent()).toBe(now.totals.legs.toLocaleString('en-US'));
    expect(await legsTile.locator('.p').textContent()).toContain(`previous: ${before.totals.legs.toLocaleString('en-US')}`);
    expect(now.totals.legs).toBeGreaterThan(0);
    await page.getByTestId('chart').locator('canvas').waitFor();
    expect(rig.errors).toEqual([]);
  });

  it('drills every linked figure through to a calls list whose total equals it', async () => {
    const page = await rig.newPage();
    const start = `/console/analytics?since=${SINCE}&until=${UNTIL}&groupBy=provider&interval=day`;
    await signIn(page, rig.base, start);
    await page.getByTestId('tiles').waitFor();
    const links = await page.locator('a[data-count]').evaluateAll((as) => as.map((a) => ({ href: a.getAttribute('href')!, count: a.getAttribute('data-count')! })));
    // Legs, answered, five outcomes, one row per provider.
    expect(links.length).toBeGreaterThanOrEqual(8);
    for (const { href, count } of links) {
      await page.goto(rig.base + href);
      await expect.poll(() => page.getByTestId('calls-total').textContent(), { message: href }).toBe(Number(count).toLocaleString('en-US'));
    }
    // And by clicking, as a user does.
    await page.goto(rig.base + start);
    await page.locator('[data-tile="Answered"] a').click();
    await page.waitForURL(/\/console\/calls\?/);
    const answered = await rig.api<Summary>(`/v1/analytics/summary?since=${SINCE}&until=${UNTIL}`);
    await expect.poll(() => page.getByTestId('calls-total').textContent()).toBe(answered.totals.answered.toLocaleString('en-US'));
    expect(rig.errors).toEqual([]);
  });

  it('drills a day of the breakdown through to the legs that started that day', async () => {
    const page = await rig.newPage();
    await signIn(page, rig.base, `/console/analytics?since=${SINCE}&until=${UNTIL}&groupBy=day&interval=day`);
    await page.getByTestId('breakdown').waitFor();
    const days = await rig.api<Summary>(`/v1/analytics/summary?since=${SINCE}&until=${UNTIL}&groupBy=day`);
    const busiest = [...days.groups].sort((a, b) => b.legs - a.legs)[0]!;
    await page.locator(`tr[data-group="${busiest.key}"] a`).click();
    await page.waitForURL(/\/console\/calls\?/);
    await expect.poll(() => page.getByTestId('calls-total').textContent()).toBe(busiest.legs.toLocaleString('en-US'));
    expect(rig.errors).toEqual([]);
  });
});
