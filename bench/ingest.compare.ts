/**
 * `node dist/bench/ingest.compare.js` (after `nest build ledger`): live ingest of two configurations side by side
 * on one embedded PostgreSQL, for a shared machine where two runs minutes apart differ by more than the change.
 * Both services run at once, each on a fresh database; the load (64 connections of simulated signed webhooks)
 * alternates between them for ROUNDS rounds of SLOT_SEC seconds, so every slow spell of the other tenants
 * weighs on both. Prints, per configuration, the requests per second and the CPU per stored delivery of the
 * service and of PostgreSQL (every process of the server, measured over the slots of that configuration only).
 *
 *   A_ENV / B_ENV   JSON objects of environment variables for each service (e.g. '{"LEDGER_PROJECTOR":"off"}')
 *   A_DIR / B_DIR   another built checkout to run instead of this one (the old build: `git archive` + build)
 *   ROUNDS (4), SLOT_SEC (8), CONNECTIONS (64)
 *   PGSS=1          pg_stat_statements on the server (nested statements too): each side's top statements at the end
 */
import { readFileSync } from 'node:fs';
import { signDelivery } from '../libs/simulator/src/index.js';
import { BENCH_SECRETS, CpuMeter, SIM_SECRETS, fmt, percentile, postgresPids, projectorBatches, runAutocannon, startBenchServer, startService, type RunningService } from './bench-support.js';
import { simulatedDeliveries } from './ingest.bench.js';

const API_KEY = 'bench-key-0123456789';
const rounds = Number(process.env.ROUNDS ?? 4);
const slotSec = Number(process.env.SLOT_SEC ?? 8);
const connections = Number(process.env.CONNECTIONS ?? 64);
const sides = (['A', 'B'] as const).map((name) => ({
  name,
  env: JSON.parse(process.env[`${name}_ENV`] ?? '{}') as Record<string, string>,
  dir: process.env[`${name}_DIR`],
}));

const pgss = ['-c', 'shared_preload_libraries=pg_stat_statements', '-c', 'pg_stat_statements.track=all'];
const { dataDir, freshDatabase, stop, admin } = await startBenchServer('ledger-bench-compare-', process.env.PGSS ? pgss : []);
/** A PostgreSQL process's role from its title: client backends, the WAL writer, autovacuum, the rest. */
const roleOf = (pid: number): string => {
  try {
    const title = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replace(/\0/g, ' ');
    if (/autovacuum/.test(title)) return 'autovacuum';
    if (/walwriter/.test(title)) return 'walwriter';
    if (/checkpointer|background writer/.test(title)) return 'checkpointer+bgwriter';
    if (/postgres: \S+ \S+ /.test(title)) return 'backends';
    return 'other';
  } catch {
    return 'other';
  }
};
const pgRoles = ['backends', 'walwriter', 'autovacuum', 'checkpointer+bgwriter', 'other'];
const pgByRole = Object.fromEntries(pgRoles.map((r) => [r, () => postgresPids(dataDir).filter((pid) => roleOf(pid) === r)]));
const deliveries = simulatedDeliveries('bench-compare', Math.max(20_000, rounds * slotSec * 3000), 'live');
const services: RunningService[] = [];
try {
  for (const s of sides) {
    services.push(
      await startService({ ...BENCH_SECRETS, LEDGER_API_KEYS: API_KEY, ...s.env, DATABASE_URL: await freshDatabase(`bench_compare_${s.name.toLowerCase()}`) }, [], s.dir ?? process.cwd()),
    );
  }
  // Each side sends the same deliveries in the same order.
  const cursors = sides.map(() => ({ i: 0 }));
  const totals = sides.map(() => ({ requests: 0, sec: 0, service: 0, postgres: 0, p99: [] as number[], p50: [] as number[], non2xx: 0, roles: Object.fromEntries(pgRoles.map((r) => [r, 0])) as Record<string, number> }));
  const drive = (k: number, sec: number) =>
    runAutocannon({
      url: services[k]!.url,
      connections,
      duration: sec,
      requests: [
        {
          setupRequest: (req) => {
            const d = deliveries[cursors[k]!.i++ % deliveries.length]!;
            const sg = signDelivery({ ...d, sentAtMs: Date.now() }, SIM_SECRETS, services[k]!.url);
            return { ...req, method: 'POST', path: sg.url, headers: sg.headers, body: sg.body };
          },
        },
      ],
    });
  for (let k = 0; k < sides.length; k += 1) await drive(k, 2);
  for (let round = 0; round < rounds; round += 1) {
    // A B, then B A: neither side always runs right after the other's load.
    const order = round % 2 === 0 ? [0, 1] : [1, 0];
    for (const k of order) {
      const meter = new CpuMeter({ ...pgByRole, service: () => [services[k]!.child.pid!] });
      const res = await drive(k, slotSec);
      const byRole = meter.stop();
      const cpu = { ...byRole, cores: { service: byRole.cores.service ?? 0, postgres: pgRoles.reduce((a, r) => a + (byRole.cores[r] ?? 0), 0) } };
      const t = totals[k]!;
      for (const r of pgRoles) t.roles[r]! += (byRole.cores[r] ?? 0) * cpu.wallSec;
      t.requests += res.requests.total;
      t.sec += cpu.wallSec;
      t.service += (cpu.cores.service ?? 0) * cpu.wallSec;
      t.postgres += (cpu.cores.postgres ?? 0) * cpu.wallSec;
      t.p50.push(res.latency.p50);
      t.p99.push(res.latency.p99);
      t.non2xx += res.non2xx;
      console.log(
        `round ${round} ${sides[k]!.name}: ${fmt(res.requests.total / cpu.wallSec)} req/s, p99 ${res.latency.p99} ms, ` +
          `CPU per delivery service ${fmt(((cpu.cores.service ?? 0) * cpu.wallSec * 1e6) / res.requests.total)} + PostgreSQL ${fmt(((cpu.cores.postgres ?? 0) * cpu.wallSec * 1e6) / res.requests.total)} µs (machine busy ${fmt(cpu.machineBusyCores, 2)} cores, others ${fmt(cpu.otherCores, 2)})`,
      );
    }
  }
  console.log(`\n${connections} connections, ${rounds} rounds of ${slotSec} s per side, alternated`);
  const batches = await Promise.all(services.map((s) => projectorBatches(s.url, API_KEY)));
  totals.forEach((t, k) => {
    const b = batches[k]!;
    const svc = (t.service * 1e6) / t.requests;
    const pgUs = (t.postgres * 1e6) / t.requests;
    console.log(
      `${sides[k]!.name} ${JSON.stringify(sides[k]!.env)}${sides[k]!.dir ? ` (${sides[k]!.dir})` : ''}: ${fmt(t.requests / t.sec)} req/s, ` +
        `median slot p50 ${percentile(t.p50, 0.5)} ms / p99 ${percentile(t.p99, 0.5)} ms, non-2xx ${t.non2xx}; ` +
        `CPU per delivery service ${fmt(svc)} + PostgreSQL ${fmt(pgUs)} = ${fmt(svc + pgUs)} µs ` +
        `(PostgreSQL: ${pgRoles.map((r) => `${r} ${fmt((t.roles[r]! * 1e6) / t.requests)}`).join(', ')}); ` +
        `projector: ${fmt(b.batches)} batches, ${fmt(b.events / b.batches, 1)} events and ${fmt((b.seconds / b.batches) * 1000, 1)} ms each (warm-up included); ` +
        `service peak RSS ${fmt(services[k]!.peakRssMb())} MB (warm-up included)`,
    );
  });
  if (process.env.PGSS) {
    await admin.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
    for (const s of sides) {
      const { rows } = await admin.query<{ calls: string; ms: number; rows: string; query: string }>(
        `SELECT s.calls::text, s.total_exec_time + s.total_plan_time AS ms, s.rows::text, left(regexp_replace(s.query, '[[:space:]]+', ' ', 'g'), 110) AS query
         FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1 ORDER BY 2 DESC LIMIT 25`,
        [`bench_compare_${s.name.toLowerCase()}`],
      );
      console.log(`\n${s.name}: top statements by time (nested ones inside their caller's time too)`);
      for (const r of rows) console.log(`${r.calls.padStart(8)} calls ${r.ms.toFixed(0).padStart(7)} ms ${r.rows.padStart(8)} rows  ${r.query}`);
    }
  }
} finally {
  for (const s of services) await s.stop();
  await stop();
}
