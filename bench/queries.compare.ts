/**
 * `node dist/bench/queries.compare.js --old DIR --data-dir STORE [--requests 200]`: the query routes of
 * `bench:queries`, old build against this one, on the same store (filled by `npm run bench:queries -- --data-dir
 * STORE`; a PostgreSQL already running on it is used as it is). DIR is another checkout, built (`nest build ledger`).
 *
 * Both services run at once. For each route it first checks that both answer every measured request with the same
 * bytes, then sends the measured requests to the two services alternately (old, new, old, new...), so that a busy
 * machine slows both alike, and prints p50/p99 of each and the CPU per request of each service process (/proc).
 */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from 'undici';
import { startEmbeddedPostgres } from '../libs/db/src/index.js';
import { fmt, percentile, startService, type RunningService } from './bench-support.js';
import { QUERY_API_KEY, queryRoutes, type LegFill } from './queries.bench.js';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const oldDir = arg('old');
const dataDir = arg('data-dir');
if (!oldDir || !dataDir) throw new Error('--old DIR (a built checkout) --data-dir STORE (filled by bench:queries)');
const REQUESTS = Number(arg('requests') ?? 200);

const cpuMs = (pid: number): number => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) * 10;
};

const fill = JSON.parse(await readFile(join(dataDir, 'fill.json'), 'utf8')) as LegFill;
const pgServer = await startEmbeddedPostgres({ dataDir, attach: true });
const env = { DATABASE_URL: pgServer.url, LEDGER_API_KEYS: QUERY_API_KEY };
const services: { name: string; svc: RunningService; client: Client }[] = [];
try {
  for (const [name, cwd] of [['old', oldDir], ['new', process.cwd()]] as const) {
    const svc = await startService(env, [], cwd);
    services.push({ name, svc, client: new Client(svc.url, { pipelining: 1 }) });
  }
  const get = async (client: Client, path: string): Promise<{ ms: number; body: Buffer }> => {
    const started = performance.now();
    const res = await client.request({ method: 'GET', path, headers: { authorization: `Bearer ${QUERY_API_KEY}` } });
    const body = Buffer.from(await res.body.arrayBuffer());
    const ms = performance.now() - started;
    if (res.statusCode !== 200) throw new Error(`${path} answered ${res.statusCode}`);
    return { ms, body };
  };
  const routes = queryRoutes(fill);
  for (const r of routes) for (let i = 0; i < 50; i += 1) for (const s of services) await get(s.client, r.url(1000 + i));
  console.log(`${'route'.padEnd(44)} ${'old p50'.padStart(8)} ${'new p50'.padStart(8)} ${'old p99'.padStart(8)} ${'new p99'.padStart(8)}   service CPU/request old → new`);
  for (const r of routes) {
    for (let i = 0; i < REQUESTS; i += 1) {
      const [a, b] = await Promise.all(services.map((s) => get(s.client, r.url(i))));
      if (!a!.body.equals(b!.body)) throw new Error(`${r.label}: ${r.url(i)} answers differ between old and new`);
    }
    const times = services.map(() => [] as number[]);
    const cpu0 = services.map((s) => cpuMs(s.svc.child.pid!));
    for (let i = 0; i < REQUESTS; i += 1) {
      for (let k = 0; k < services.length; k += 1) times[k]!.push((await get(services[(i + k) % 2]!.client, r.url(i))).ms);
    }
    // times[k] holds old and new alternately by request; sort them back per service.
    const per = services.map(() => [] as number[]);
    for (let i = 0; i < REQUESTS; i += 1) for (let k = 0; k < services.length; k += 1) per[(i + k) % 2]!.push(times[k]![i]!);
    const cpu = services.map((s, k) => (cpuMs(s.svc.child.pid!) - cpu0[k]!) * 1000 / REQUESTS);
    const sorted = per.map((t) => [...t].sort((x, y) => x - y));
    const p = (k: number, q: number) => fmt(percentile(sorted[k]!, q), 2).padStart(8);
    console.log(`${r.label.padEnd(44)} ${p(0, 0.5)} ${p(1, 0.5)} ${p(0, 0.99)} ${p(1, 0.99)}   ${fmt(cpu[0]!)} → ${fmt(cpu[1]!)} µs`);
  }
  console.log(`\nidentical answers: every measured request of every route, old and new byte for byte`);
} finally {
  for (const s of services) {
    await s.client.close();
    await s.svc.stop();
  }
  await pgServer.stop();
}
