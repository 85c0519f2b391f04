/**
 * `node dist/bench/live-fold.probe.js` (after `nest build ledger`): the live projector alone, old build against this
 * one, on the same events. Fills one database with CALLS generated calls whose events are interleaved as live traffic
 * interleaves them (every call's first event, then every call's second...), appended in transactions of APPEND events;
 * then, per round and side (alternated), clones it and lets that side's call_legs projection fold every event through
 * the live loop (handle, batches of BATCH), not the rebuild's bulk path, and prints the Node CPU and the PostgreSQL CPU
 * per event (from /proc), so that a shared machine's load weighs on both sides alike. It also prints how long the
 * probe's event loop was held at a time while the projector caught up (the lateness of a 1 ms timer: p99 and the
 * longest): in the service the same loop answers tee forwards and webhooks, which wait behind such a block.
 *
 *   OLD_DIR   a built checkout of the old code (`git archive main | tar -x -C DIR`, node_modules linked, `nest build
 *             ledger`); without it, this build runs on both sides
 *   CALLS (3000), BATCH (200), APPEND (200), ROUNDS (3; the first round of each side warms its code up and is not
 *   counted in the totals when there are more)
 *   PGSS=1    pg_stat_statements (nested statements too): each side's top statements of its last round
 */
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import fc from 'fast-check';
import { createDatabase, migrateToLatest } from '../libs/db/src/index.js';
import { EventStoreRepository, type WebhookRecord } from '../libs/event-store/src/index.js';
import type { LedgerEvent, TranslatedEvent } from '../libs/ledger/src/index.js';
import { callScenarioArb } from '../libs/ledger/src/testing/call-scenarios.js';
import { CpuMeter, databaseUrl, fmt, percentile, postgresPids, startBenchServer } from './bench-support.js';

/**
 * The lateness of a 1 ms timer, tick by tick, until stopped: how long the event loop was held at a time. On a shared
 * machine most of that can be the process waiting for a core; the CPU the process used between two ticks is the part
 * its own work held the loop for (GC helper threads included), which other tenants do not blur.
 */
const loopLateness = () => {
  const late: number[] = [];
  const busy: number[] = [];
  let last = performance.now();
  let cpu = process.cpuUsage();
  const timer = setInterval(() => {
    const now = performance.now();
    const used = process.cpuUsage(cpu);
    late.push(Math.max(0, now - last - 1));
    busy.push((used.user + used.system) / 1000);
    last = now;
    cpu = process.cpuUsage();
  }, 1);
  return () => {
    clearInterval(timer);
    return { p99: percentile(late, 0.99), max: Math.max(0, ...late), over10: late.filter((x) => x > 10).length, cpuP99: percentile(busy, 0.99), cpuMax: Math.max(0, ...busy) };
  };
};

const calls = Number(process.env.CALLS ?? 3000);
const batch = Number(process.env.BATCH ?? 200);
const append = Number(process.env.APPEND ?? 200);
const rounds = Number(process.env.ROUNDS ?? 3);

const toRecord = (e: LedgerEvent, salt: number): WebhookRecord => {
  const id = (x: string | null) => (x ? `${x}-${salt}` : null);
  const data = e.data as unknown as Record<string, unknown>;
  const body = Buffer.from(JSON.stringify({ salt, id: e.eventId, type: e.type, leg: e.legId, data }));
  return {
    receipt: {
      provider: e.provider, body, bodySha256: createHash('sha256').update(body).digest(), contentType: 'application/json', path: '',
      query: '', headers: {}, remoteAddr: null, receivedAt: new Date(e.receivedAt), source: 'live', signatureStatus: 'verified',
      signatureTimestamp: e.sentAt ? new Date(e.sentAt) : null,
    },
    events: [{
      type: e.type, legId: id(e.legId), accountId: e.accountId, parentLegId: id(e.parentLegId), occurredAt: e.occurredAt, providerSeq: e.providerSeq, party: e.party,
      data: {
        ...data,
        ...(typeof data.childLegId === 'string' ? { childLegId: id(data.childLegId) } : {}),
        ...(typeof data.parentLegId === 'string' ? { parentLegId: id(data.parentLegId) } : {}),
      },
    } as TranslatedEvent],
  };
};

interface Side {
  name: string;
  dir: string;
}
const sides: Side[] = [
  { name: 'old', dir: process.env.OLD_DIR ?? process.cwd() },
  { name: 'new', dir: process.cwd() },
];

const pgss = ['-c', 'shared_preload_libraries=pg_stat_statements', '-c', 'pg_stat_statements.track=all'];
const { dataDir, server, admin, stop } = await startBenchServer('ledger-live-fold-', process.env.PGSS ? pgss : []);
const statements: string[] = [];
try {
  if (process.env.PGSS) await admin.query('CREATE EXTENSION IF NOT EXISTS pg_stat_statements');
  const template = 'live_fold_src';
  await admin.query(`CREATE DATABASE ${template}`);
  {
    const { db } = createDatabase(databaseUrl(server.url, template), 4);
    await migrateToLatest(db);
    const scenarios = fc.sample(callScenarioArb, { numRuns: calls, seed: 14 });
    // Live order: each call's k-th event after every call's (k-1)-th, so that a leg's events fall in several batches.
    const queues = scenarios.map((s, salt) => s.events.map((e) => toRecord(e, salt)));
    const records: WebhookRecord[] = [];
    for (let k = 0; queues.some((q) => k < q.length); k += 1) for (const q of queues) if (k < q.length) records.push(q[k]!);
    const store = new EventStoreRepository(db);
    for (let i = 0; i < records.length; i += append) await store.appendBatch(records.slice(i, i + append));
    console.log(`${fmt(records.length)} events of ${fmt(calls)} calls, appended in transactions of ${append}; live batches of ${batch}`);
    await db.destroy();
  }
  const totals = new Map(sides.map((s) => [s.name, { node: 0, pg: 0, events: 0, sec: 0, lateP99: [] as number[], lateMax: [] as number[], over10: 0, cpuP99: [] as number[], cpuMax: [] as number[] }]));
  for (let round = 0; round < rounds; round += 1) {
    for (const side of round % 2 === 0 ? sides : [...sides].reverse()) {
      const name = `live_fold_${side.name}_${round}`;
      await admin.query(`CREATE DATABASE ${name} TEMPLATE ${template}`);
      const dbLib = (await import(join(side.dir, 'dist/libs/db/src/index.js'))) as typeof import('../libs/db/src/index.js');
      const proj = (await import(join(side.dir, 'dist/libs/projections/src/index.js'))) as typeof import('../libs/projections/src/index.js');
      const { db } = dbLib.createDatabase(databaseUrl(server.url, name), 4);
      const projector = new proj.Projector(db, [proj.callLegsProjection], { batchSize: batch });
      await projector.init();
      const events = Number((await db.selectFrom('events').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()).n);
      const meter = new CpuMeter({ postgres: () => postgresPids(dataDir) });
      const cpu0 = process.cpuUsage();
      const t0 = performance.now();
      const lateness = loopLateness();
      await projector.runUntilCaughtUp();
      const late = lateness();
      const sec = (performance.now() - t0) / 1000;
      const used = process.cpuUsage(cpu0);
      const share = meter.stop();
      const nodeUs = used.user + used.system;
      const pgUs = (share.cores.postgres ?? 0) * share.wallSec * 1e6;
      const t = totals.get(side.name)!;
      if (round > 0 || rounds === 1) {
        t.node += nodeUs;
        t.pg += pgUs;
        t.events += events;
        t.sec += sec;
        t.lateP99.push(late.p99);
        t.lateMax.push(late.max);
        t.over10 += late.over10;
        t.cpuP99.push(late.cpuP99);
        t.cpuMax.push(late.cpuMax);
      }
      console.log(
        `round ${round} ${side.name}: ${fmt(events / sec)} events/s, CPU per event Node ${fmt(nodeUs / events, 1)} + PostgreSQL ${fmt(pgUs / events, 1)} µs (others ${fmt(share.otherCores, 2)} cores), event loop held p99 ${fmt(late.p99, 1)} ms, longest ${fmt(late.max, 1)} ms, ${late.over10} times over 10 ms; by its own CPU p99 ${fmt(late.cpuP99, 1)} ms, longest ${fmt(late.cpuMax, 1)} ms`,
      );
      await db.destroy();
      if (process.env.PGSS && round === rounds - 1 - (round % 2 === 0 ? 0 : 0)) {
        const top = await admin.query<{ calls: string; ms: number; rows: string; query: string }>(
          `SELECT s.calls::text, round(s.total_exec_time)::int AS ms, s.rows::text, left(regexp_replace(s.query, '\\s+', ' ', 'g'), 110) AS query
           FROM pg_stat_statements s JOIN pg_database d ON d.oid = s.dbid WHERE d.datname = $1 ORDER BY 2 DESC LIMIT 20`,
          [name],
        );
        statements.push(`${side.name}, round ${round}:`, ...top.rows.map((r) => `  ${r.calls.padStart(7)} calls ${String(r.ms).padStart(7)} ms ${r.rows.padStart(8)} rows  ${r.query}`));
      }
      await admin.query(`DROP DATABASE ${name}`);
    }
  }
  for (const line of statements) console.log(line);
  for (const [name, t] of totals) {
    console.log(`${name}: ${fmt(t.events / t.sec)} events/s, CPU per event Node ${fmt(t.node / t.events, 1)} + PostgreSQL ${fmt(t.pg / t.events, 1)} = ${fmt((t.node + t.pg) / t.events, 1)} µs; event loop held p99 ${t.lateP99.map((x) => fmt(x, 1)).join(' / ')} ms, longest ${t.lateMax.map((x) => fmt(x, 1)).join(' / ')} ms, ${t.over10} times over 10 ms; by its own CPU p99 ${t.cpuP99.map((x) => fmt(x, 1)).join(' / ')} ms, longest ${t.cpuMax.map((x) => fmt(x, 1)).join(' / ')} ms`);
  }
} finally {
  await stop();
}
