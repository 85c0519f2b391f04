import { mkdir } from 'node:fs/promises';
import { chromium, type Page } from 'playwright-core';
import { importLine, simulate } from '@lib/simulator';
import { sendLive } from '../apps/simulator/src/live-sender.js';
import { BENCH_SECRETS, SIM_SECRETS, startService } from './bench-support.js';

/**
 * `npm run console:screenshots`: the built service on a fresh embedded PostgreSQL, filled with simulated traffic
 * (30 days imported, plus live signed calls), photographed by Debian's Chromium into docs/console/*.png.
 */
const API_KEY = 'console-screenshots-key';
const OUT = 'docs/console';
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--hide-scrollbars'];

const api = async <T>(base: string, path: string): Promise<T> => {
  const res = await fetch(base + path, { headers: { authorization: `Bearer ${API_KEY}` } });
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  return res.json() as Promise<T>;
};

const main = async () => {
  await mkdir(OUT, { recursive: true });
  const service = await startService({ ...BENCH_SECRETS, LEDGER_API_KEYS: API_KEY });
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  try {
    const end = Date.UTC(new Date().getUTCFullYear(), new Date().getUTCMonth(), new Date().getUTCDate());
    const history = simulate({ seed: 'screenshots', calls: 1500, provider: 'mixed', baseTimeMs: end, mode: 'import', days: 30, rate: 1, maxTalkSec: 300 });
    const imported = await fetch(`${service.url}/v1/import`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/x-ndjson' },
      body: history.deliveries.map(importLine).join('\n') + '\n',
    });
    if (!imported.ok) throw new Error(`import: ${imported.status}`);
    const live = simulate({ seed: 'screenshots-live', calls: 30, provider: 'mixed', baseTimeMs: Math.floor(Date.now() / 1000) * 1000, mode: 'live', days: 0, rate: 20, maxTalkSec: 120 });
    await sendLive(live.deliveries, { target: service.url, publicUrl: service.url, secrets: SIM_SECRETS, concurrency: 8, leadMs: 240_000, now: () => Date.now(), progress: () => undefined });
    for (;;) {
      const { data } = await api<{ data: { lagEvents: number }[] }>(service.url, '/v1/admin/projections');
      if (data.length && data.every((p) => p.lagEvents === 0)) break;
      await new Promise((r) => setTimeout(r, 200));
    }

    // The largest live tree makes the best call page.
    const roots = (await api<{ data: { callId: string; provider: string; treeLegs: number }[] }>(service.url, '/v1/calls?rootOnly=true&limit=30')).data;
    const call = [...roots].sort((a, b) => b.treeLegs - a.treeLegs)[0]!;
    const events = (await api<{ data: { position: string; callId: string }[] }>(service.url, `/v1/calls/${encodeURIComponent(call.callId)}/events?provider=${call.provider}&tree=true`)).data;
    const delivery = events.find((e) => e.callId !== call.callId) ?? events[0]!;

    const context = await browser.newContext({ viewport: { width: 1280, height: 900 }, deviceScaleFactor: 1 });
    const page = await context.newPage();
    await page.goto(`${service.url}/console/calls`);
    await page.getByLabel('API key').fill(API_KEY);
    await shot(page, 'sign-in');
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.getByTestId('calls-total').waitFor();
    await shot(page, 'calls');

    await page.goto(`${service.url}/console/calls/${encodeURIComponent(call.callId)}?provider=${call.provider}&event=${delivery.position}`);
    await page.getByTestId('body-viewer').waitFor();
    await shot(page, 'call', true);

    const since = new Date(end - 7 * 86_400_000).toISOString();
    await page.goto(`${service.url}/console/analytics?since=${since}&until=${new Date(end).toISOString()}&groupBy=provider&interval=day`);
    await page.getByTestId('chart').locator('canvas').waitFor();
    await shot(page, 'analytics', true);

    await page.goto(`${service.url}/console/operations`);
    await page.getByRole('button', { name: 'Verify chains' }).click();
    await page.getByTestId('verify-report').waitFor();
    await shot(page, 'operations', true);

    const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, deviceScaleFactor: 2, storageState: await context.storageState() });
    const small = await phone.newPage();
    await small.goto(`${service.url}/console/calls/${encodeURIComponent(call.callId)}?provider=${call.provider}`);
    await small.getByTestId('ladder').waitFor();
    await shot(small, 'call-phone');
  } finally {
    await browser.close();
    await service.stop();
  }
};

const shot = async (page: Page, name: string, fullPage = false) => {
  await page.screenshot({ path: `${OUT}/${name}.png`, fullPage });
  console.log(`${OUT}/${name}.png`);
};

main().catch((err: unknown) => {
  console.error(err);
  process.exit(1);
});
