/**
 * `node dist/bench/append-overhead.probe.js` (after `nest build ledger`): where the fixed PostgreSQL CPU of one
 * `ledger_append` call goes. Batches of BATCH deliveries (default 1) through EventStoreRepository.appendBatch on
 * one backend of a fresh embedded PostgreSQL, under variants of the function applied in turn (rounds alternate,
 * so the other tenants of a shared machine weigh on every variant alike); prints the backend's user + system CPU
 * per call from /proc. A variant is a diagnosis, not a proposal: some drop a guarantee to show what it costs.
 */
import { readFile, mkdtemp } from 'node:fs/promises';
import { createHash, randomUUID } from 'node:crypto';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { sql } from 'kysely';
import { createDatabase, migrateToLatest, startEmbeddedPostgres, type Database } from '../libs/db/src/index.js';
import { EventStoreRepository } from '../libs/event-store/src/index.js';
import { translateJambonzWebhook } from '../libs/providers/src/jambonz/jambonz.translate.js';
import * as leanAppendCall from '../migrations/20261205000100_lean_append_call.js';

const pgs = await startEmbeddedPostgres({ dataDir: await mkdtemp(join(tmpdir(), 'probe-')) });
const { db } = createDatabase(pgs.url, 1);
await migrateToLatest(db);
const { rows: [backend] } = await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(db);
const ticks = async (): Promise<number> => {
  const f = (await readFile(`/proc/${backend!.pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return Number(f[11]) + Number(f[12]);
};
const store = new EventStoreRepository(db);
const mk = () => {
  const body = Buffer.from(JSON.stringify({ call_sid: randomUUID(), call_status: 'ringing', direction: 'outbound', from: '1', to: '2', account_sid: 'a', sip_status: 180 }));
  return {
    receipt: { provider: 'jambonz' as const, body, bodySha256: createHash('sha256').update(body).digest(), contentType: 'application/json', path: 'status', query: '', headers: { a: 'b' }, remoteAddr: null, receivedAt: new Date(), source: 'live' as const, signatureStatus: 'verified' as const, signatureTimestamp: null },
    events: translateJambonzWebhook(body, { provider: 'jambonz', path: 'status', query: new URLSearchParams(), contentType: null }),
  };
};

const { rows: [fn] } = await sql<{ oid: string; def: string }>`
  SELECT p.oid::regprocedure::text AS oid, pg_get_functiondef(p.oid) AS def FROM pg_proc p
  WHERE p.proname = 'ledger_append' AND pronargs = 23`.execute(db);
const original = fn!.def;
const replace = (from: string, to: string) => async (d: Database) => {
  if (!original.includes(from)) throw new Error(`not in ledger_append: ${from}`);
  await sql.raw(original.replace(from, to)).execute(d);
};

/** Each variant starts from the function as migrated. */
const variants: Record<string, (d: Database) => Promise<void>> = {
  base: async () => undefined,
  invoker: async (d) => void (await sql.raw(`ALTER FUNCTION ${fn!.oid} SECURITY INVOKER RESET search_path`).execute(d)),
  nonotify: replace(`PERFORM pg_notify('ledger_events', top::text);`, ''),
  nodupcheck: replace('WHERE NOT (k.o = ANY (kept_ord));', 'WHERE false;'),
  gateddup: replace('WHERE NOT (k.o = ANY (kept_ord));', 'WHERE cardinality(kept_ord) < cardinality(r_provider) AND NOT (k.o = ANY (kept_ord));'),
  generic: async (d) => void (await sql.raw(`ALTER FUNCTION ${fn!.oid} SET plan_cache_mode = force_generic_plan`).execute(d)),
  'generic+gated': async (d) => {
    await variants.gateddup!(d);
    await variants.generic!(d);
  },
  noensure: replace('PERFORM ledger_ensure_partitions(r_received);', ''),
  nojsonb: replace('x.d::jsonb, x.m::jsonb', "'{}'::jsonb, '{}'::jsonb"),
  noreceivedlookup: replace('r_received[x.ow]', 'now()'),
  custom: async (d) => void (await sql.raw(`ALTER FUNCTION ${fn!.oid} SET plan_cache_mode = force_custom_plan`).execute(d)),
  // The call before 20261205000100_lean_append_call (its down: the key trigger for every receipt, the nested
  // ensure_partitions call, the windows for every batch); its slot ends with the migration's up again.
  'pre-lean': (d) => leanAppendCall.down(d),
  // 20261205000100 without one of its levers each: no one-event-per-stream statement (the several-events one
  // takes such batches); neither one-statement path (the general two statements); ensure_partitions every call.
  'lean-no-k1': replace('IF cardinality(kept_ord) = cardinality(r_provider) AND n_streams', 'IF false AND n_streams'),
  'lean-general': async (d) => {
    for (const anchor of ['IF cardinality(kept_ord) = cardinality(r_provider) AND n_streams', 'ELSIF cardinality(kept_ord) = cardinality(r_provider) AND cardinality(e_stream)'])
      if (!original.includes(anchor)) throw new Error(`not in ledger_append: ${anchor}`);
    await sql
      .raw(original.replace('IF cardinality(kept_ord) = cardinality(r_provider) AND n_streams', 'IF false AND n_streams').replace('ELSIF cardinality(kept_ord) = cardinality(r_provider) AND cardinality(e_stream)', 'ELSIF false AND cardinality(e_stream)'))
      .execute(d);
  },
  'lean-ensure': replace('IF months IS NULL OR', 'IF true OR'),
};
const restore: Record<string, (d: Database) => Promise<void>> = { 'pre-lean': (d) => leanAppendCall.up(d) };
const only = process.env.VARIANTS?.split(',') ?? Object.keys(variants);
const batch = Number(process.env.BATCH ?? 1);
const per = Number(process.env.CALLS ?? 150);
const totals = new Map<string, { ticks: number; calls: number }>();
for (let round = 0; round < Number(process.env.ROUNDS ?? 4); round += 1) {
  for (const name of only) {
    await sql.raw(original).execute(db);
    await sql`SELECT ledger_apply_roles()`.execute(db);
    await variants[name]!(db);
    for (let i = 0; i < 10; i += 1) await store.appendBatch(Array.from({ length: batch }, mk));
    const batches = Array.from({ length: per }, () => Array.from({ length: batch }, mk));
    // PERF=<dir>: a perf profile of the backend over each measured slot (perf report -i <dir>/<variant>-<round>.data).
    const perf = process.env.PERF ? spawn('perf', ['record', '-q', '-F', '1500', '--call-graph', 'dwarf,16384', '-p', String(backend!.pid), '-o', join(process.env.PERF, `${name}-${round}.data`)], { stdio: 'ignore' }) : null;
    if (perf) await new Promise((r) => setTimeout(r, 500));
    const t0 = await ticks();
    for (const b of batches) await store.appendBatch(b);
    const t = (await ticks()) - t0;
    if (perf) {
      perf.kill('SIGINT');
      await once(perf, 'exit');
    }
    await restore[name]?.(db);
    const acc = totals.get(name) ?? { ticks: 0, calls: 0 };
    totals.set(name, { ticks: acc.ticks + t, calls: acc.calls + per });
  }
}
for (const [name, t] of totals) console.log(`${name.padEnd(12)} ${((t.ticks * 10_000) / t.calls).toFixed(0).padStart(6)} µs backend CPU per call of ${batch}`);
await db.destroy();
await pgs.stop();
