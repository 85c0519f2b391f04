/**
 * `npm run bench:console [-- --legs N]`: the Call Console in Debian's Chromium against a store of N call legs
 * (default 1,000,000, filled and rebuilt as `npm run bench:queries` does, plus a few 20-leg trees): p50/p95 of the
 * time from navigation start until the first calls page shows its rows, and until the call page of a 20-leg tree
 * shows its tree and ladder. Each load is a fresh navigation (HTML, bundle, session check, API calls, render).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { chromium, type Page } from 'playwright-core';
import { createDatabase, migrateToLatest, startEmbeddedPostgres, type Database } from '../libs/db/src/index.js';
import { EventStoreRepository } from '../libs/event-store/src/index.js';
import type { Provider } from '../libs/ledger/src/index.js';
import { callLegsProjection, Projector } from '../libs/projections/src/index.js';
import { fmt, isMain, percentile, startService } from './bench-support.js';
import { assertEveryLegProjected, fillLegs, legRecord, QUERY_API_KEY, type PlannedLeg } from './queries.bench.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const LOADS = 40;
const WARMUP = 5;

export interface ConsoleLatency {
  view: string;
  p50: number;
  p95: number;
  loads: number;
  /** Every load's time, sorted (bench/console.compare.ts pools rounds). */
  times?: number[];
}

/** Twenty legs over three levels: a root, four children, and five grandchildren under three of them. */
const twentyLegTree = (root: string): PlannedLeg[] => {
  const legs: PlannedLeg[] = [{ callId: root, parent: null, depth: 0 }];
  for (let c = 0; c < 4; c += 1) {
    legs.push({ callId: `${root}-${c}`, parent: root, depth: 1 });
    for (let g = 0; c < 3 && g < 5; g += 1) legs.push({ callId: `${root}-${c}-${g}`, parent: `${root}-${c}`, depth: 2 });
  }
  return legs;
};

/** Appends a few 20-leg trees, started inside the fill's window, and answers their roots. */
export const appendTwentyLegTrees = async (db: Database, count = 10): Promise<{ provider: Provider; callId: string }[]> => {
  const store = new EventStoreRepository(db);
  const roots: { provider: Provider; callId: string }[] = [];
  const providers: Provider[] = ['freeclimb', 'jambonz', 'twilio', 'restcomm'];
  for (let i = 0; i < count; i += 1) {
    const provider = providers[i % providers.length]!;
    const root = `CAtwenty${i}`;
    const startMs = Date.parse('2026-10-15T12:00:00Z') + i * 3_600_000;
    await store.appendBatch(twentyLegTree(root).map((leg) => legRecord(provider, 'ACtwenty', leg, startMs + leg.depth * 1500)));
    roots.push({ provider, callId: root });
  }
  return roots;
};

/**
 * Installed before every navigation: records, by the page's own clock, the first frame in which each selector a
 * view waits for is in the DOM. A full load is then measured inside the page, not by when the driver's next
 * round trip over CDP noticed it (on a loaded machine that round trip alone added tens of milliseconds).
 */
export const READY_PROBE = `(() => {
  const wanted = ${JSON.stringify(['table.calls tbody tr', '[data-testid="ladder"] .mark'])};
  window.__ready = {};
  const check = () => {
    for (const s of wanted) if (window.__ready[s] === undefined && document.querySelector(s)) window.__ready[s] = performance.now();
    requestAnimationFrame(check);
  };
  requestAnimationFrame(check);
})()`;

const timed = async (page: Page, url: string, ready: string): Promise<number> => {
  await page.goto(url);
  await page.waitForSelector(ready);
  // Navigation start to the first frame with the view in the DOM, by the page's own clock (READY_PROBE).
  return page.waitForFunction((s) => (globalThis as unknown as { __ready: Record<string, number> }).__ready[s], ready).then((h) => h.jsonValue() as Promise<number>);
};

export const summarize = (view: string, times: number[], quiet = false): ConsoleLatency => {
  times.sort((a, b) => a - b);
  const r = { view, p50: percentile(times, 0.5), p95: percentile(times, 0.95), loads: times.length, times };
  if (!quiet) console.log(`${view.padEnd(44)} p50 ${fmt(r.p50, 1).padStart(7)} ms   p95 ${fmt(r.p95, 1).padStart(7)} ms`);
  return r;
};

/** In the loaded app, as a click on a link does: route to `path` and wait until `ready` is in the DOM (page clock). */
const routed = (page: Page, path: string, ready: string): Promise<number> =>
  page.evaluate(`(async () => {
    const t0 = performance.now();
    history.pushState(null, '', ${JSON.stringify(path)});
    dispatchEvent(new PopStateEvent('popstate'));
    await new Promise((resolve) => { const check = () => (document.querySelector(${JSON.stringify(ready)}) ? resolve() : requestAnimationFrame(check)); check(); });
    return performance.now() - t0;
  })()`) as Promise<number>;

const LIST_READY = 'table.calls tbody tr';
const CALL_READY = '[data-testid="ladder"] .mark';

/**
 * Signs in once, then measures each view two ways: a full page load (HTML, bundle, session check, API calls,
 * render) and a route change inside the loaded app (API calls and render), LOADS times each after WARMUP.
 */
export const measureConsole = async (base: string, apiKey: string, twenty: { provider: Provider; callId: string }[], loads = LOADS, quiet = false): Promise<ConsoleLatency[]> => {
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
  try {
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.addInitScript(READY_PROBE);
    const page = await context.newPage();
    await page.goto(`${base}/console/calls`);
    await page.getByLabel('API key').fill(apiKey);
    await page.getByRole('button', { name: 'Sign in' }).click();
    await page.waitForSelector(LIST_READY);
    const callPath = (i: number) => `/console/calls/${twenty[i % twenty.length]!.callId}?provider=${twenty[i % twenty.length]!.provider}`;
    const list: number[] = [];
    const call: number[] = [];
    for (let i = 0; i < WARMUP + loads; i += 1) {
      const c = await routed(page, callPath(i), CALL_READY);
      const l = await routed(page, '/console/calls', LIST_READY);
      if (i >= WARMUP) {
        call.push(c);
        list.push(l);
      }
    }
    const coldList: number[] = [];
    const coldCall: number[] = [];
    for (let i = 0; i < WARMUP + loads; i += 1) {
      const l = await timed(page, `${base}/console/calls`, LIST_READY);
      const c = await timed(page, base + callPath(i), CALL_READY);
      if (i >= WARMUP) {
        coldList.push(l);
        coldCall.push(c);
      }
    }
    return [
      summarize('console: first calls page (50 rows), in-app', list, quiet),
      summarize('console: call page, 20-leg tree, in-app', call, quiet),
      summarize('console: first calls page, full page load', coldList, quiet),
      summarize('console: call page, 20-leg tree, full load', coldCall, quiet),
    ];
  } finally {
    await browser.close();
  }
};

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};

if (isMain(import.meta.url)) {
  const dataDir = await mkdtemp(join(tmpdir(), 'ledger-bench-console-'));
  const pgServer = await startEmbeddedPostgres({ dataDir });
  const { db } = createDatabase(pgServer.url, 8);
  let service: Awaited<ReturnType<typeof startService>> | null = null;
  try {
    await migrateToLatest(db);
    await fillLegs(db, Number(arg('legs') ?? 1_000_000));
    const twenty = await appendTwentyLegTrees(db);
    const projector = new Projector(db, [callLegsProjection], { batchSize: 2000 });
    await projector.init();
    await projector.rebuild();
    await projector.stop();
    await sql`VACUUM ANALYZE`.execute(db);
    await assertEveryLegProjected(db);
    const [{ n }] = (await sql<{ n: string }>`SELECT count(*)::text AS n FROM call_legs`.execute(db)).rows as [{ n: string }];
    console.log(`call_legs rows: ${fmt(Number(n))}\n`);
    service = await startService({ DATABASE_URL: pgServer.url, LEDGER_API_KEYS: QUERY_API_KEY, LOG_LEVEL: 'warn' });
    await measureConsole(service.url, QUERY_API_KEY, twenty);
  } finally {
    await service?.stop();
    await db.destroy();
    await pgServer.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}
