/**
 * `node dist/bench/console.profile.js [--legs N]`: where the console's time goes. On a small store (default 5,000
 * legs plus the 20-leg trees), loads the first calls page and the call page of a 20-leg tree in Chromium, in-app
 * (route change) and as a full page load, and prints per view the median waterfall: each request's start and end
 * after the view began, its size, and when the view was ready. Figures for the profile notes, not for targets.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { chromium, type Page } from 'playwright-core';
import { createDatabase, migrateToLatest, startEmbeddedPostgres } from '../libs/db/src/index.js';
import { callLegsProjection, Projector } from '../libs/projections/src/index.js';
import { fmt, isMain, startService } from './bench-support.js';
import { appendTwentyLegTrees, READY_PROBE } from './console.bench.js';
import { fillLegs, QUERY_API_KEY } from './queries.bench.js';

const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const LOADS = Number(process.env.LOADS ?? 15);

interface Sample {
  ready: number;
  requests: { name: string; start: number; end: number; bytes: number }[];
}

/** In-app: the same route change a click makes; every request that started after it, relative to it. */
const inApp = (page: Page, path: string, ready: string): Promise<Sample> =>
  page.evaluate(`(async () => {
    performance.clearResourceTimings();
    const t0 = performance.now();
    history.pushState(null, '', ${JSON.stringify(path)});
    dispatchEvent(new PopStateEvent('popstate'));
    await new Promise((resolve) => { const check = () => (document.querySelector(${JSON.stringify(ready)}) ? resolve() : requestAnimationFrame(check)); check(); });
    const ready = performance.now() - t0;
    const requests = performance.getEntriesByType('resource').map((e) => ({ name: e.name.replace(location.origin, ''), start: e.startTime - t0, end: e.responseEnd - t0, bytes: e.encodedBodySize }));
    return { ready, requests };
  })()`) as Promise<Sample>;

const fullLoad = async (page: Page, url: string, ready: string): Promise<Sample> => {
  await page.goto(url);
  await page.waitForSelector(ready);
  await page.waitForFunction((s) => (globalThis as unknown as { __ready: Record<string, number> }).__ready[s], ready);
  return page.evaluate(`(() => ({
    ready: window.__ready[${JSON.stringify(ready)}],
    requests: [...performance.getEntriesByType('navigation'), ...performance.getEntriesByType('resource')].map((e) => ({ name: e.name.replace(location.origin, ''), start: e.startTime, end: e.responseEnd, bytes: e.encodedBodySize })),
  }))()`) as Promise<Sample>;
};

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

const report = (view: string, samples: Sample[]) => {
  console.log(`\n${view}: ready at ${fmt(median(samples.map((s) => s.ready)), 1)} ms (median of ${samples.length})`);
  const names = [...new Set(samples.flatMap((s) => s.requests.map((r) => r.name.replace(/[?].*$/, '?…').replace(/\/calls\/[^/?]+/, '/calls/{id}'))))];
  for (const name of names) {
    const of = samples.flatMap((s) => s.requests.filter((r) => r.name.replace(/[?].*$/, '?…').replace(/\/calls\/[^/?]+/, '/calls/{id}') === name));
    console.log(
      `  ${name.slice(0, 60).padEnd(60)} start ${fmt(median(of.map((r) => r.start)), 1).padStart(7)}  end ${fmt(median(of.map((r) => r.end)), 1).padStart(7)} ms  ${fmt(median(of.map((r) => r.bytes)) / 1024, 1).padStart(7)} KiB  ×${(of.length / samples.length).toFixed(1)}`,
    );
  }
};

if (isMain(import.meta.url)) {
  const arg = (name: string) => { const i = process.argv.indexOf(`--${name}`); return i >= 0 ? process.argv[i + 1] : undefined; };
  const dataDir = await mkdtemp(join(tmpdir(), 'ledger-console-profile-'));
  const pgServer = await startEmbeddedPostgres({ dataDir });
  const { db } = createDatabase(pgServer.url, 8);
  let service: Awaited<ReturnType<typeof startService>> | null = null;
  try {
    await migrateToLatest(db);
    await fillLegs(db, Number(arg('legs') ?? 5000));
    const twenty = await appendTwentyLegTrees(db);
    const projector = new Projector(db, [callLegsProjection], { batchSize: 2000 });
    await projector.init();
    await projector.rebuild();
    await projector.stop();
    await sql`VACUUM ANALYZE`.execute(db);
    // CPU_PROF=<dir>: the service writes a V8 CPU profile there when it stops.
    service = await startService({ DATABASE_URL: pgServer.url, LEDGER_API_KEYS: QUERY_API_KEY, LOG_LEVEL: 'error' }, process.env.CPU_PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.CPU_PROF}`] : []);
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS });
    try {
      const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
      await context.addInitScript(READY_PROBE);
      const page = await context.newPage();
      await page.goto(`${service.url}/console/calls`);
      await page.getByLabel('API key').fill(QUERY_API_KEY);
      await page.getByRole('button', { name: 'Sign in' }).click();
      await page.waitForSelector('table.calls tbody tr');
      const callPath = (i: number) => `/console/calls/${twenty[i % twenty.length]!.callId}?provider=${twenty[i % twenty.length]!.provider}`;
      if (process.env.BROWSER_PROF) {
        // A V8 profile of the page over in-app loads of the call page (build with --minify false to read the names).
        const cdp = await page.context().newCDPSession(page);
        await cdp.send('Profiler.enable');
        await cdp.send('Profiler.start');
        for (let i = 0; i < LOADS; i += 1) {
          await inApp(page, callPath(i), '[data-testid="ladder"] .mark');
          await inApp(page, '/console/calls', 'table.calls tbody tr');
        }
        const { profile } = await cdp.send('Profiler.stop');
        const { writeFile } = await import('node:fs/promises');
        await writeFile(process.env.BROWSER_PROF, JSON.stringify(profile));
      }
      const list: Sample[] = [];
      const call: Sample[] = [];
      const coldList: Sample[] = [];
      const coldCall: Sample[] = [];
      for (let i = 0; i < LOADS + 3; i += 1) {
        const c = await inApp(page, callPath(i), '[data-testid="ladder"] .mark');
        const l = await inApp(page, '/console/calls', 'table.calls tbody tr');
        if (i >= 3) {
          call.push(c);
          list.push(l);
        }
      }
      for (let i = 0; i < LOADS + 3; i += 1) {
        const l = await fullLoad(page, `${service.url}/console/calls`, 'table.calls tbody tr');
        const c = await fullLoad(page, service.url + callPath(i), '[data-testid="ladder"] .mark');
        if (i >= 3) {
          coldList.push(l);
          coldCall.push(c);
        }
      }
      // The same API requests from Node, one at a time: what the server takes, without the browser.
      const server = async (name: string, path: (i: number) => string) => {
        const ms: number[] = [];
        for (let i = 0; i < LOADS + 3; i += 1) {
          const t0 = performance.now();
          const res = await fetch(service!.url + path(i), { headers: { authorization: `Bearer ${QUERY_API_KEY}` } });
          await res.arrayBuffer();
          if (i >= 3) ms.push(performance.now() - t0);
        }
        console.log(`server alone: ${name.padEnd(48)} median ${fmt(median(ms), 1)} ms`);
      };
      const leg = (i: number) => twenty[i % twenty.length]!;
      await server('GET /v1/calls?limit=50', () => '/v1/calls?limit=50');
      await server('GET /v1/calls?limit=1&withTotal=true', () => '/v1/calls?limit=1&withTotal=true');
      await server('GET /v1/calls/{id}/tree (20 legs)', (i) => `/v1/calls/${leg(i).callId}/tree?provider=${leg(i).provider}`);
      await server('GET /v1/calls/{id}/events?tree=true (20 legs)', (i) => `/v1/calls/${leg(i).callId}/events?provider=${leg(i).provider}&tree=true`);
      report('calls page, in-app', list);
      report('call page (20 legs), in-app', call);
      report('calls page, full load', coldList);
      report('call page (20 legs), full load', coldCall);
    } finally {
      await browser.close();
    }
  } finally {
    await service?.stop();
    await db.destroy();
    await pgServer.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
}
