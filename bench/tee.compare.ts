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
 * The rounds include the commit floor (commit.probe.ts: one delivery per durable commit at the same rate, on an
 * embedded PostgreSQL of its own, no HTTP, no service), and the run ends with an fsync probe (fsync.probe.ts): what a
 * durable commit costs on this machine while it is this loaded, to read the added latency against.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import pg from 'pg';
import { CREDENTIALS_FILE } from '../libs/db/src/embedded-postgres.js';
import { CpuMeter, fmt, percentile, postgresPids, projectorBatches, startService, type RunningService } from './bench-support.js';
import { CommitFloor } from './commit.probe.js';
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

/**
 * Commits and WAL flushes of a service's embedded PostgreSQL (cumulative statistics, as backends report them):
 * per request they say how many transactions and fsyncs a delivery costs, which the machine's load does not blur.
 */
const pgCounters = async (dataDir: string): Promise<{ commits: number; walFsyncs: number }> => {
  const port = Number(readFileSync(join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[3]);
  const { owner } = JSON.parse(readFileSync(join(dataDir, CREDENTIALS_FILE), 'utf8')) as { owner: string };
  const client = new pg.Client({ host: '127.0.0.1', port, user: 'postgres', password: owner, database: 'postgres' });
  await client.connect();
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
  for (const v of variants) {
    services.push(await startService({ FREECLIMB_SIGNING_SECRET: SECRET, LEDGER_TEE_FREECLIMB_URL: `${appBase}/fc`, LEDGER_API_KEYS: API_KEY, ...v.env }, v.nodeArgs ?? [], v.cwd ?? process.cwd()));
  }
  const routes: { name: string; url: string; service: RunningService | null }[] = [{ name: 'direct to the app', url: `${appBase}/fc/${SUB_PATH}`, service: null }];
  for (const [i, v] of variants.entries()) {
    const only = process.env.TEE_ROUTES;
    if (only !== 'tee') routes.push({ name: `${v.name}: webhook`, url: `${services[i]!.url}/v1/webhooks/freeclimb/voice`, service: services[i]! });
    if (only !== 'webhook') routes.push({ name: `${v.name}: tee`, url: `${services[i]!.url}/v1/tee/freeclimb/${SUB_PATH}`, service: services[i]! });
  }
  const samples: number[][] = routes.map(() => []);
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
      await phase(route.url, ROUND, warmup, samples[k]!, failures);
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
  console.log(`tee compare at ${RATE} calls/s, ${rounds} alternating rounds of ${ROUND} s per route, load average ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')}`);
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
} finally {
  await floor.stop();
  for (const s of services) await s.stop();
  await new Promise((r) => app.close(r));
}
