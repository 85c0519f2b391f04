/**
 * `node dist/bench/queries.probe.js --data-dir DIR [--requests 200] [--route <label prefix>] [--explain-over MS]`
 * (after `npm run bench:queries -- --data-dir DIR` has filled DIR and rebuilt its projections): where the time of
 * each query route goes, on the same store and with the same requests as `bench:queries`.
 *
 * For each route, over the measured requests (sequential, like the bench):
 * - client: what the bench's fetch saw, p50/p99;
 * - service: Fastify's own time for the request (onRequest to onResponse, from the access log), p50/p99, and
 *   the client time of the same request minus it (the loopback, the client, and the wait before the service
 *   reads the request);
 * - CPU per request of the service, of PostgreSQL (every backend) and of the client process (/proc, Linux), which
 *   a shared machine disturbs much less than the wall times;
 * - the service's garbage collections (`--trace-gc`) inside the requests: how many of the slowest 2 % had one;
 * - pg_stat_statements over the route's statements: calls, mean and max execution time, mean planning time;
 * - with `--explain-over MS`, auto_explain (ANALYZE, BUFFERS) of every statement slower than MS ms in PostgreSQL.
 */
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { sql } from 'kysely';
import { Client } from 'undici';
import { createDatabase, startEmbeddedPostgres } from '../libs/db/src/index.js';
import { freePort } from '../libs/db/src/embedded-postgres.js';
import { fmt, percentile } from './bench-support.js';
import { QUERY_API_KEY, queryRoutes, type LegFill } from './queries.bench.js';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const dataDir = arg('data-dir');
if (!dataDir) throw new Error('--data-dir DIR (a store filled by npm run bench:queries -- --data-dir DIR)');
const REQUESTS = Number(arg('requests') ?? 200);
const ONLY = arg('route');
const EXPLAIN_OVER = arg('explain-over');

/** user + system CPU of a process in ms (clock ticks of 10 ms). */
const cpuMs = (pid: number): number => {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  } catch {
    return 0;
  }
};
const childrenOf = (pid: number): number[] => {
  try {
    return readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number);
  } catch {
    return [];
  }
};

const fill = JSON.parse(await readFile(join(dataDir, 'fill.json'), 'utf8')) as LegFill;
const pgLog: string[] = [];
const pgServer = await startEmbeddedPostgres({
  dataDir,
  // A server already running on DIR (started with the same flags) is used as it is.
  attach: true,
  flags: [
    '-c', 'shared_preload_libraries=pg_stat_statements,auto_explain', '-c', 'pg_stat_statements.track=all', '-c', 'pg_stat_statements.track_planning=on',
    ...(EXPLAIN_OVER ? ['-c', `auto_explain.log_min_duration=${EXPLAIN_OVER}`, '-c', 'auto_explain.log_analyze=on', '-c', 'auto_explain.log_buffers=on', '-c', 'auto_explain.log_timing=on'] : []),
  ],
  log: (l) => {
    if (EXPLAIN_OVER && (l.includes('duration') || pgLog.length)) pgLog.push(l);
  },
});
const postmaster = (): number => Number(readFileSync(join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
const { db } = createDatabase(pgServer.url, 1);
await sql`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`.execute(db);

const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const serviceDir = await mkdtemp(join(tmpdir(), 'ledger-probe-'));
// SERVICE_NODE_ARGS: V8 or Node flags for the service (e.g. `--max-semi-space-size=64`), to compare their GCs.
const child = spawn(process.execPath, ['--trace-gc', ...(process.env.SERVICE_NODE_ARGS ?? '').split(' ').filter(Boolean), 'dist/apps/ledger/src/main.js'], {
  env: { ...process.env, DATABASE_URL: pgServer.url, LEDGER_API_KEYS: QUERY_API_KEY, LEDGER_DATA_DIR: serviceDir, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'info' },
  stdio: ['ignore', 'pipe', 'inherit'],
});
/** Per request id: the service's time; GC pauses are charged to the request whose access line comes next. */
const served = new Map<string, { ms: number; gcMs: number; gcs: number }>();
let gcMs = 0;
let gcs = 0;
createInterface({ input: child.stdout! }).on('line', (line) => {
  const gc = /: (?:Scavenge|Mark-Compact|Mark-sweep|Minor Mark-Sweep)\b.*?MB, (?:pooled: [\d.]+ MB, )?([\d.]+) \/ [\d.]+ ms/.exec(line);
  if (gc) {
    gcMs += Number(gc[1]);
    gcs += 1;
    return;
  }
  if (!line.startsWith('{')) return;
  const j = JSON.parse(line) as { msg?: string; reqId?: string; durationMs?: number };
  if (j.msg === 'request completed' && j.reqId) {
    served.set(j.reqId, { ms: j.durationMs!, gcMs, gcs });
    gcMs = 0;
    gcs = 0;
  }
});
for (const deadline = Date.now() + 60_000; ; ) {
  try {
    if ((await fetch(`${base}/health`)).ok) break;
  } catch {
    /* not listening yet */
  }
  if (Date.now() > deadline) throw new Error('service did not become healthy in 60 s');
  await new Promise((r) => setTimeout(r, 200));
}

const headers = { authorization: `Bearer ${QUERY_API_KEY}` };
// The bench's client (queries.bench.ts measure): one keep-alive connection, undici's request API.
const client = new Client(base, { pipelining: 1 });
const get = async (path: string) => {
  const started = performance.now();
  const res = await client.request({ method: 'GET', path, headers });
  await res.body.arrayBuffer();
  const ms = performance.now() - started;
  if (res.statusCode !== 200) throw new Error(`${path} answered ${res.statusCode}`);
  return { ms, id: String(res.headers['x-request-id']) };
};
const waitFor = async (ids: string[]) => {
  while (ids.some((id) => !served.has(id))) await new Promise((r) => setImmediate(r));
};

try {
  const routes = queryRoutes(fill).filter((r) => !ONLY || r.label.includes(ONLY));
  for (const r of routes) for (let i = 0; i < (r.label.includes('analytics') ? 20 : 100); i += 1) await get(r.url(1000 + i));
  for (const r of routes) {
    await sql`SELECT pg_stat_statements_reset()`.execute(db);
    pgLog.length = 0;
    // The backends there at the start and still there at the end (the service's pool keeps its connections; a
    // background worker that exits in between would make the sum go backwards).
    const pids0 = childrenOf(postmaster());
    const cpu0 = new Map(pids0.map((p) => [p, cpuMs(p)]));
    const svc0 = cpuMs(child.pid!);
    const me0 = process.cpuUsage();
    // Sessions (backend connections) opened while the route was measured: a request that waits for a new
    // connection pays its handshake, its authentication and a backend whose caches are cold.
    const sessions = async () => Number((await sql<{ n: string }>`SELECT sum(sessions)::text AS n FROM pg_stat_database`.execute(db)).rows[0]!.n);
    const sessions0 = await sessions();
    const samples: { ms: number; id: string }[] = [];
    for (let i = 0; i < REQUESTS; i += 1) samples.push(await get(r.url(i)));
    const opened = (await sessions()) - sessions0;
    await waitFor(samples.map((s) => s.id));
    const me = process.cpuUsage(me0);
    const svc = cpuMs(child.pid!) - svc0;
    const alive = new Set(childrenOf(postmaster()));
    const pg = pids0.filter((p) => alive.has(p)).reduce((s, p) => s + cpuMs(p) - cpu0.get(p)!, 0);
    const rows = samples.map((s) => ({ ...s, server: served.get(s.id)! }));
    const client = rows.map((x) => x.ms).sort((a, b) => a - b);
    const server = rows.map((x) => x.server.ms).sort((a, b) => a - b);
    const gap = rows.map((x) => x.ms - x.server.ms).sort((a, b) => a - b);
    const slow = [...rows].sort((a, b) => b.ms - a.ms).slice(0, Math.max(1, Math.ceil(REQUESTS * 0.02)));
    const per = (ms: number) => fmt((ms * 1000) / REQUESTS);
    console.log(`\n${r.label}`);
    console.log(`  client  p50 ${fmt(percentile(client, 0.5), 2)}  p99 ${fmt(percentile(client, 0.99), 2)} ms`);
    console.log(`  service p50 ${fmt(percentile(server, 0.5), 2)}  p99 ${fmt(percentile(server, 0.99), 2)} ms;  client − service p50 ${fmt(percentile(gap, 0.5), 2)}  p99 ${fmt(percentile(gap, 0.99), 2)} ms`);
    console.log(`  CPU per request: service ${per(svc)} µs, PostgreSQL ${per(pg)} µs, client ${per((me.user + me.system) / 1000)} µs;  database sessions opened meanwhile: ${opened}`);
    console.log(`  GC in the service: ${rows.reduce((s, x) => s + x.server.gcs, 0)} collections in ${REQUESTS} requests, ${fmt(rows.reduce((s, x) => s + x.server.gcMs, 0) / REQUESTS, 3)} ms per request; slowest ${slow.length}: ${slow.map((x) => `${fmt(x.ms, 1)} ms (service ${fmt(x.server.ms, 1)}, gc ${fmt(x.server.gcMs, 1)})`).join(', ')}`);
    const stats = await sql<{ query: string; calls: string; mean: number; max: number; plan: number; rows: string }>`
      SELECT left(regexp_replace(query, '[[:space:]]+', ' ', 'g'), 110) AS query, calls::text, mean_exec_time AS mean, max_exec_time AS max, mean_plan_time AS plan, rows::text
      FROM pg_stat_statements WHERE query NOT LIKE '%pg_stat_statements%' ORDER BY total_exec_time + total_plan_time DESC LIMIT 6`.execute(db);
    for (const s of stats.rows) console.log(`  pg ${s.calls.padStart(4)} calls  exec mean ${fmt(s.mean, 3)} max ${fmt(s.max, 2)} ms  plan ${fmt(s.plan, 3)} ms  ${s.query}`);
    if (EXPLAIN_OVER && pgLog.length) console.log(pgLog.slice(0, 3).join('\n'));
  }
} finally {
  await client.close();
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  await rm(serviceDir, { recursive: true, force: true });
  await db.destroy();
  await pgServer.stop();
}
