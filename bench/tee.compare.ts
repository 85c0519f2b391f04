/**
 * `node dist/bench/tee.compare.js` (after `nest build ledger`): the tee bench for several builds or settings side
 * by side, so that a shared machine's load falls on all of them alike. Each variant is a service of its own (its
 * own embedded PostgreSQL); the rounds alternate direct to the stub app, then each variant's plain webhook and
 * tee routes, ROUND s each (BENCH_ROUND_SECONDS, default 2), for BENCH_SECONDS (default 20) per route.
 *
 * TEE_VARIANTS='[{"name":"old","cwd":"/tmp/old-build"},{"name":"new"},{"name":"new, no projector","env":{"LEDGER_PROJECTOR":"off"}}]'
 * (`cwd`: a checkout built with `nest build ledger`; default this one; `nodeArgs`, e.g. `["--cpu-prof",
 * "--cpu-prof-dir=/tmp/prof"]` for a V8 profile written when the service stops). Default: this build with and
 * without the in-process projector. TEE_ROUTES=tee (or webhook) runs only that route of each variant;
 * TEE_SUB_PATH=think/voice calls the stub app's thinking path instead.
 *
 * Every variant's service runs with loop-delay.preload.ts: the run also prints, per route, how late the service's event
 * loop ran a 1 ms timer during that route's rounds (p50/p99/p99.9/max over the ticks) and its GC pauses (count, p99,
 * sum per second), and the CPU the service used between two ticks (the part of a late tick that its own work held the
 * loop for, not a wait for a core): the second figure of the tail, less noisy than a request p99 (TEE_LOOP_DELAY=0
 * leaves it out).
 *
 * The rounds include the commit floor (commit.probe.ts: one delivery per durable commit at the same rate, on an
 * embedded PostgreSQL of its own, no HTTP, no service), and the run ends with an fsync probe (fsync.probe.ts): what a
 * durable commit costs on this machine while it is this loaded, to read the added latency against.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import pg from 'pg';
import { CREDENTIALS_FILE } from '../libs/db/src/embedded-postgres.js';
import { CpuMeter, fmt, percentile, postgresPids, projectorBatches, startService, type RunningService } from './bench-support.js';
import { CommitFloor } from './commit.probe.js';
import type { LoopDelayTrace } from './loop-delay.preload.js';
import { probeFsync } from './fsync.probe.js';
import { figures, phase, RATE, ROUND, SECRET, startStubApp, WARMUP } from './tee.bench.js';

interface Variant {
  name: string;
  cwd?: string;
  env?: Record<string, string>;
  nodeArgs?: string[];
}

const variants: Variant[] = process.env.TEE_VARIANTS
  ? (JSON.parse(process.env.TEE_VARIANTS) as Variant[])
  : [{ name: 'projector on' }, { name: 'projector off', env: { LEDGER_PROJECTOR: 'off' } }];
const seconds = Number(process.env.BENCH_SECONDS ?? 20);
/** `think/voice`: the stub app answers after BENCH_APP_THINK_MS (tee.bench.ts), as an app doing its own work. */
const SUB_PATH = process.env.TEE_SUB_PATH ?? 'voice';
const API_KEY = 'bench-key-0123456789';
const LOOP_DELAY = process.env.TEE_LOOP_DELAY !== '0';
const PRELOAD = fileURLToPath(new URL('./loop-delay.preload.js', import.meta.url));
const traceDir = mkdtempSync(join(tmpdir(), 'tee-loop-'));

/** Ticks and GC pauses of one service inside the given wall-clock windows. */
const loopFigures = (trace: LoopDelayTrace, windows: [number, number][]) => {
  const inside = (t: number) => windows.some(([a, b]) => t >= a && t <= b);
  const ticks = trace.ticks.filter(([t]) => inside(t));
  const delays = ticks.map(([, d]) => d);
  const busy = ticks.map(([, , c]) => c);
  const gcs = trace.gcs.filter(([t]) => inside(t)).map(([, , d]) => d);
  const seconds = windows.reduce((s, [a, b]) => s + (b - a) / 1000, 0);
  return {
    ticks: delays.length,
    p50: percentile(delays, 0.5),
    p99: percentile(delays, 0.99),
    p999: percentile(delays, 0.999),
    max: Math.max(0, ...delays),
    cpuP99: percentile(busy, 0.99),
    cpuP999: percentile(busy, 0.999),
    cpuMax: Math.max(0, ...busy),
    gcCount: gcs.length,
    gcP50: percentile(gcs, 0.5),
    gcP99: percentile(gcs, 0.99),
    gcMax: Math.max(0, ...gcs),
    gcMsPerSecond: gcs.reduce((s, d) => s + d, 0) / seconds,
  };
};

/** A superuser connection to a service's embedded PostgreSQL. */
const superuser = async (dataDir: string): Promise<pg.Client> => {
  const port = Number(readFileSync(join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[3]);
  const { owner } = JSON.parse(readFileSync(join(dataDir, CREDENTIALS_FILE), 'utf8')) as { owner: string };
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: owner, database: 'postgres' });
  await client.connect();
  return client;
};

/**
 * TEE_ASYNC_COMMIT=1: every service's PostgreSQL commits without waiting for its WAL flush (synchronous_commit
 * off, server-wide). A diagnostic, not the service's guarantee: on a machine whose disk is busy with other
 * tenants' work a commit's fsync can take 100 ms and more, and then a thinking app's tee p99 is the disk's; with
 * the flush out of the way what the tee adds is the service's own (its event loop and CPU), which is what a
 * change to the service can move.
 */
const ASYNC_COMMIT = process.env.TEE_ASYNC_COMMIT === '1';

/**
 * Commits and WAL flushes of a service's embedded PostgreSQL (cumulative statistics, as backends report them):
 * per request they say how many transactions and fsyncs a delivery costs, which the machine's load does not blur.
 */
const pgCounters = async (dataDir: string): Promise<{ commits: number; walFsyncs: number }> => {
  const client = await superuser(dataDir);
  try {
    const { rows } = await client.query<{ commits: string; fsyncs: string }>(
      `SELECT (SELECT sum(xact_commit) FROM pg_stat_database)::text AS commits,
              (SELECT coalesce(sum(fsyncs), 0) FROM pg_stat_io WHERE object = 'wal')::text AS fsyncs`,
    );
    return { commits: Number(rows[0]!.commits), walFsyncs: Number(rows[0]!.fsyncs) };
  } finally {
    await client.end();
  }
};

const { app, appBase } = await startStubApp();
const services: RunningService[] = [];
const floor = await CommitFloor.start();
const floorSamples: number[] = [];
try {
  for (const [i, v] of variants.entries()) {
    const trace: Record<string, string> = LOOP_DELAY ? { LOOP_DELAY_OUT: join(traceDir, `${i}.json`) } : {};
    const preload = LOOP_DELAY ? ['--import', PRELOAD] : [];
    const service = await startService({ FREECLIMB_SIGNING_SECRET: SECRET, LEDGER_TEE_FREECLIMB_URL: `${appBase}/fc`, LEDGER_API_KEYS: API_KEY, ...trace, ...v.env }, [...preload, ...(v.nodeArgs ?? [])], v.cwd ?? process.cwd());
    services.push(service);
    if (ASYNC_COMMIT) {
      const client = await superuser(service.dataDir);
      await client.query('ALTER SYSTEM SET synchronous_commit = off');
      await client.query('SELECT pg_reload_conf()');
      await client.end();
    }
  }
  const routes: { name: string; url: string; service: RunningService | null }[] = [{ name: 'direct to the app', url: `${appBase}/fc/${SUB_PATH}`, service: null }];
  for (const [i, v] of variants.entries()) {
    const only = process.env.TEE_ROUTES;
    if (only !== 'tee') routes.push({ name: `${v.name}: webhook`, url: `${services[i]!.url}/v1/webhooks/freeclimb/voice`, service: services[i]! });
    if (only !== 'webhook') routes.push({ name: `${v.name}: tee`, url: `${services[i]!.url}/v1/tee/freeclimb/${SUB_PATH}`, service: services[i]! });
  }
  const samples: number[][] = routes.map(() => []);
  /** Wall-clock windows of each route's counted requests (warm-up left out), for the loop-delay figures. */
  const windows: [number, number][][] = routes.map(() => []);
  const cpu = routes.map(() => ({ service: 0, postgres: 0, requests: 0, commits: 0, walFsyncs: 0 }));
  const failures: string[] = [];
  const rounds = Math.max(1, Math.round(seconds / ROUND));
  for (let r = 0; r < rounds; r++) {
    for (const [k, route] of routes.entries()) {
      const warmup = r === 0 ? WARMUP : 0;
      if (k === 1) await floor.phase(RATE, ROUND, warmup, floorSamples);
      const s = route.service;
      const meter = s ? new CpuMeter({ service: () => [s.child.pid!], postgres: () => postgresPids(s.dataDir) }) : null;
      const before = s ? await pgCounters(s.dataDir) : null;
      const began = Date.now();
      await phase(route.url, ROUND, warmup, samples[k]!, failures);
      windows[k]!.push([began + warmup * 1000, Date.now()]);
      const share = meter?.stop();
      if (s && before) {
        const after = await pgCounters(s.dataDir);
        cpu[k]!.commits += after.commits - before.commits;
        cpu[k]!.walFsyncs += after.walFsyncs - before.walFsyncs;
      }
      if (share) {
        cpu[k]!.service += share.cores.service! * share.wallSec;
        cpu[k]!.postgres += share.cores.postgres! * share.wallSec;
        cpu[k]!.requests += Math.round((ROUND + warmup) * RATE);
      }
    }
  }
  const direct = figures(samples[0]!);
  const commit = figures(floorSamples);
  console.log(`tee compare at ${RATE} calls/s${ASYNC_COMMIT ? ' (services commit without waiting for the WAL flush: TEE_ASYNC_COMMIT)' : ''}, ${rounds} alternating rounds of ${ROUND} s per route, load average ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')}`);
  for (const [k, route] of routes.entries()) {
    const f = figures(samples[k]!);
    const c = cpu[k]!;
    const cpuText =
      c.requests > 0
        ? `  CPU/req service ${fmt((c.service / c.requests) * 1000, 3)} ms postgres ${fmt((c.postgres / c.requests) * 1000, 3)} ms  commits/req ${fmt(c.commits / c.requests, 2)}  WAL fsyncs/req ${fmt(c.walFsyncs / c.requests, 2)}`
        : '';
    const p90 = percentile(samples[k]!, 0.9);
    console.log(`${route.name.padEnd(34)} n=${f.n}  p50 ${fmt(f.p50, 2)}  p90 ${fmt(p90, 2)}  p99 ${fmt(f.p99, 2)}  max ${fmt(f.max, 2)} ms${k > 0 && route.name.endsWith('tee') ? `  added p50 ${fmt(f.p50 - direct.p50, 2)} p99 ${fmt(f.p99 - direct.p99, 2)}` : ''}${cpuText}`);
    if (k === 0) {
      console.log(
        `${'commit floor (1 delivery/commit)'.padEnd(34)} n=${commit.n}  p50 ${fmt(commit.p50, 2)}  p90 ${fmt(percentile(floorSamples, 0.9), 2)}  p99 ${fmt(commit.p99, 2)}  max ${fmt(commit.max, 2)} ms` +
          `  (ledger_append + durable commit at ${RATE}/s, own PostgreSQL, no HTTP: a tee answer waits for one)`,
      );
    }
  }
  for (const [i, v] of variants.entries()) {
    const b = await projectorBatches(services[i]!.url, API_KEY);
    if (b.batches > 0) console.log(`${`${v.name}: projector`.padEnd(34)} ${fmt(b.batches)} batches, ${fmt(b.events / b.batches, 1)} events and ${fmt((b.seconds / b.batches) * 1000, 1)} ms each (warm-up included)`);
  }
  const fsync = probeFsync({ ops: 1000 });
  console.log(`${'fsync (8 kB write + fdatasync)'.padEnd(34)} n=${fsync.ops}  p50 ${fmt(fsync.p50, 2)}  p90 ${fmt(fsync.p90, 2)}  p99 ${fmt(fsync.p99, 2)}  max ${fmt(fsync.max, 2)} ms  (after the rounds)`);
  if (failures.length > 0) console.log(`FAILED requests: ${failures.length} (${failures.slice(0, 3).join('; ')})`);
  if (LOOP_DELAY) {
    // The traces are written as the services exit.
    for (const s of services) await s.stop();
    console.log('service event loop during each route\'s rounds: lateness of a 1 ms timer, and GC pauses');
    for (const [k, route] of routes.entries()) {
      if (k === 0) continue;
      const i = services.indexOf(route.service!);
      const l = loopFigures(JSON.parse(readFileSync(join(traceDir, `${i}.json`), 'utf8')) as LoopDelayTrace, windows[k]!);
      console.log(
        `${route.name.padEnd(34)} ticks=${l.ticks}  delay p50 ${fmt(l.p50, 2)}  p99 ${fmt(l.p99, 2)}  p99.9 ${fmt(l.p999, 2)}  max ${fmt(l.max, 2)} ms` +
          `  own CPU between ticks p99 ${fmt(l.cpuP99, 2)}  p99.9 ${fmt(l.cpuP999, 2)}  max ${fmt(l.cpuMax, 2)} ms` +
          `  GC ${l.gcCount} pauses, p50 ${fmt(l.gcP50, 2)}  p99 ${fmt(l.gcP99, 2)}  max ${fmt(l.gcMax, 2)} ms, ${fmt(l.gcMsPerSecond, 1)} ms/s`,
      );
    }
  }
} finally {
  await floor.stop();
  for (const s of services) await s.stop();
  await new Promise((r) => app.close(r));
  rmSync(traceDir, { recursive: true, force: true });
}
