import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fillStore, signIn, startConsoleRig, type ConsoleRig } from './support/console-browser.js';

/** Operations in the console: projections and their rebuild (confirmed, CSRF-protected), chain verification, refusals. */
let rig: ConsoleRig;
beforeAll(async () => {
  rig = await startConsoleRig();
  await fillStore(rig, { calls: 30 });
});
afterAll(async () => rig?.close());

type Status = { data: { name: string; generation: number; state: string; lagEvents: number }[] };

describe('operations', () => {
  it('rebuilds the projections only after confirmation, and shows the new generation when it is done', async () => {
    const page = await rig.newPage();
    const rebuilds: string[] = [];
    page.on('request', (r) => r.url().endsWith('/v1/admin/projections/rebuild') && rebuilds.push(r.method()));
    await signIn(page, rig.base, '/console/operations');
    const before = (await rig.api<Status>('/v1/admin/projections')).data.find((p) => p.name === 'call_legs')!;
    const generation = page.locator('[data-projection="call_legs"] [data-field="generation"]');
    await expect.poll(() => generation.textContent()).toBe(String(before.generation));

    await page.getByRole('button', { name: 'Rebuild projections…' }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    await dialog.getByRole('button', { name: 'Cancel' }).click();
    await dialog.waitFor({ state: 'hidden' });
    expect(rebuilds).toEqual([]);

    await page.getByRole('button', { name: 'Rebuild projections…' }).click();
    const answered = page.waitForResponse((r) => r.url().endsWith('/v1/admin/projections/rebuild'));
    await dialog.getByRole('button', { name: 'Rebuild now' }).click();
    expect((await answered).status()).toBe(202);
    expect(rebuilds).toEqual(['POST']);
    await expect.poll(() => page.getByRole('status').filter({ hasText: 'Rebuild started' }).count()).toBe(1);

    const deadline = Date.now() + 60_000;
    for (;;) {
      const p = (await rig.api<Status>('/v1/admin/projections')).data.find((x) => x.name === 'call_legs')!;
      if (p.generation > before.generation && p.state === 'running') break;
      if (Date.now() > deadline) throw new Error(`rebuild did not finish: ${JSON.stringify(p)}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    await expect.poll(() => generation.textContent(), { timeout: 10_000 }).toBe(String(before.generation + 1));
    expect(rig.errors).toEqual([]);
  });

  it('verifies the hash chains on demand, with the figures of the audit route', async () => {
    const page = await rig.newPage();
    await signIn(page, rig.base, '/console/operations');
    await page.getByRole('button', { name: 'Verify chains' }).click();
    const report = page.getByTestId('verify-report');
    await report.waitFor();
    const api = await rig.api<{ streamsChecked: number; eventsChecked: number; valid: boolean }>('/v1/audit/verify');
    expect(await report.locator('[data-field="valid"]').textContent()).toBe('Every chain verifies');
    expect(await report.locator('[data-field="streams"]').textContent()).toBe(String(api.streamsChecked));
    expect(await report.locator('[data-field="events"]').textContent()).toBe(String(api.eventsChecked));
    expect(rig.errors).toEqual([]);
  });

  it('lists refused webhooks by their metadata', async () => {
    const refused = await fetch(`${rig.base}/v1/webhooks/freeclimb/status`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'freeclimb-signature': 't=1,v1=00' },
      body: '{"callId":"CA-refused"}',
    });
    expect(refused.status).toBe(401);
    const api = await rig.api<{ total: number; recent: { reason: string; path: string }[] }>('/v1/admin/webhook-rejections');
    const page = await rig.newPage();
    await signIn(page, rig.base, '/console/operations');
    await expect.poll(() => page.getByTestId('rejections-total').textContent()).toBe(String(api.total));
    expect(await page.getByTestId('rejections').locator('tbody tr').first().textContent()).toContain(api.recent[0]!.reason);
    expect(await page.getByTestId('rejections').textContent()).not.toContain('CA-refused');
    await expect.poll(() => page.getByTestId('ingest').textContent()).toContain('queue depth 0');
    expect(rig.errors).toEqual([]);
  });
});
