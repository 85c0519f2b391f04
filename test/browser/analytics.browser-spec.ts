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

type Summary = { totals: { legs: number; attempts: number; answered: number; machineAnswered: number; outcomes: Record<string, number> }; groups: { key: string | null; legs: number }[] };

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

  it('drills every linked figure (tiles, ratios, outcomes, breakdown columns) through to a calls list whose total equals it', async () => {
    const page = await rig.newPage();
    const start = `/console/analytics?since=${SINCE}&until=${UNTIL}&groupBy=provider&interval=day`;
    await signIn(page, rig.base, start);
    await page.getByTestId('tiles').waitFor();
    const now = await rig.api<Summary>(`/v1/analytics/summary?since=${SINCE}&until=${UNTIL}`);
    // The simulated AMD calls answered some legs with a machine in the period: that tile is a real drill-through.
    expect(now.totals.machineAnswered).toBeGreaterThan(0);
    const tileOf = async (name: string) => page.locator(`[data-tile="${name}"] .v a`).getAttribute('data-count');
    expect(await tileOf('Attempts')).toBe(String(now.totals.attempts));
    expect(await tileOf('Machine answered')).toBe(String(now.totals.machineAnswered));
    const links = await page
      .locator('[data-testid="tiles"] a[data-count], [data-testid="outcomes"] a[data-count], [data-testid="breakdown"] a[data-count]')
      .evaluateAll((as) => as.map((a) => ({ href: a.getAttribute('href')!, count: a.getAttribute('data-count')! })));
    const unique = [...new Map(links.map((l) => [l.href, l])).values()];
    // Every tile kind: legs, attempts, answered, machine-answered, the ratios' bases, five outcomes, and per provider
    // legs, attempts, answered and machine-answered.
    expect(unique.map((l) => new URL(l.href, rig.base).searchParams.get('attempt'))).toContain('true');
    expect(unique.filter((l) => new URL(l.href, rig.base).searchParams.get('answeredBy') === 'machine,fax').length).toBeGreaterThan(1);
    expect(unique.length).toBeGreaterThanOrEqual(12);
    for (const { href, count } of unique) {
      await page.goto(rig.base + href);
      await expect.poll(() => page.getByTestId('calls-total').textContent(), { message: href }).toBe(Number(count).toLocaleString('en-US'));
    }
    // And by clicking, as a user does: each count tile.
    for (const [tile, figure] of [['Answered', now.totals.answered], ['Attempts', now.totals.attempts], ['Machine answered', now.totals.machineAnswered]] as const) {
      await page.goto(rig.base + start);
      await page.locator(`[data-tile="${tile}"] .v a`).click();
      await page.waitForURL(/\/console\/calls\?/);
      await expect.poll(() => page.getByTestId('calls-total').textContent(), { message: tile }).toBe(figure.toLocaleString('en-US'));
    }
    // The machine-answered list shows only legs the API classes as machine or fax answers.
    const rows = await page.locator('table.calls tbody tr').evaluateAll((trs) => trs.map((tr) => tr.getAttribute('data-call-id')));
    expect(rows.length).toBe(Math.min(50, now.totals.machineAnswered));
    expect(rig.errors).toEqual([]);
  });

  it('drills time-series buckets through, from the table and from a click on the chart', async () => {
    const page = await rig.newPage();
    const start = `/console/analytics?since=${SINCE}&until=${UNTIL}&groupBy=provider&interval=day`;
    await signIn(page, rig.base, start);
    const series = await rig.api<{ buckets: { start: string; legs: number; attempts: number; answered: number; machineAnswered: number }[] }>(
      `/v1/analytics/timeseries?since=${SINCE}&until=${UNTIL}&interval=day`,
    );
    const busiest = [...series.buckets].sort((a, b) => b.legs - a.legs)[0]!;
    const table = page.getByTestId('series-table');
    await table.locator('summary').click();
    const row = table.locator(`tr[data-bucket="${busiest.start}"]`);
    const cells = await row.locator('a[data-count]').evaluateAll((as) => as.map((a) => ({ href: a.getAttribute('href')!, count: a.getAttribute('data-count')! })));
    expect(cells.map((c) => c.count)).toEqual([busiest.legs, busiest.attempts, busiest.answered, busiest.machineAnswered].filter((n) => n > 0).map(String));
    for (const { href, count } of cells) {
      await page.goto(rig.base + href);
      await expect.poll(() => page.getByTestId('calls-total').textContent(), { message: href }).toBe(Number(count).toLocaleString('en-US'));
    }
    // A click on the chart opens the calls of the bucket under the cursor; its total is that bucket's legs.
    await page.goto(rig.base + start);
    const over = page.getByTestId('chart').locator('.u-over');
    await over.scrollIntoViewIfNeeded();
    const box = (await over.boundingBox())!;
    const i = series.buckets.indexOf(busiest);
    // uPlot spaces the buckets evenly across the plot area.
    await page.mouse.move(box.x + (box.width * i) / Math.max(1, series.buckets.length - 1), box.y + box.height / 2);
    await page.mouse.down();
    await page.mouse.up();
    await page.waitForURL(/\/console\/calls\?/);
    const url = new URL(page.url());
    // The first bucket's window is clipped to the period's start, as the API counts it.
    const since = url.searchParams.get('since');
    const picked = series.buckets.find((b, k) => b.start === since || (k === 0 && since === SINCE))!;
    expect(picked).toBeDefined();
    await expect.poll(() => page.getByTestId('calls-total').textContent()).toBe(picked.legs.toLocaleString('en-US'));
    expect(rig.errors).toEqual([]);
  });

  it('drills a day of the breakdown through to the legs that started that day', async () => {
    const page = await rig.newPage();
    await signIn(page, rig.base, `/console/analytics?since=${SINCE}&until=${UNTIL}&groupBy=day&interval=day`);
    await page.getByTestId('breakdown').waitFor();
    const days = await rig.api<Summary>(`/v1/analytics/summary?since=${SINCE}&until=${UNTIL}&groupBy=day`);
    const busiest = [...days.groups].sort((a, b) => b.legs - a.legs)[0]!;
    await page.locator(`tr[data-group="${busiest.key}"] td[data-col="legs"] a`).click();
    await page.waitForURL(/\/console\/calls\?/);
    await expect.poll(() => page.getByTestId('calls-total').textContent()).toBe(busiest.legs.toLocaleString('en-US'));
    expect(rig.errors).toEqual([]);
  });
});
