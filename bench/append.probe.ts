/**
 * `node dist/bench/append.probe.js` (after `npm run build`): times EventStoreRepository.appendBatch alone, per
 * batch size (SIZES=1,10,64,200,1000), on a fresh embedded PostgreSQL; the probe behind the ingest profile.
 * Besides the wall time it prints the CPU the PostgreSQL backend spent per record (from /proc, Linux only): on a
 * shared machine the wall time follows the other tenants, the CPU time much less.
 */
import { readFile } from 'node:fs/promises';
import { createHash, randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDatabase, migrateToLatest, startEmbeddedPostgres } from '../libs/db/src/index.js';
import { EventStoreRepository } from '../libs/event-store/src/index.js';
import { translateJambonzWebhook } from '../libs/providers/src/jambonz/jambonz.translate.js';

// PGLOG=1 logs every statement's plan and duration (auto_explain, nested statements of ledger_append included).
const explain = ['-c', 'session_preload_libraries=auto_explain', '-c', 'auto_explain.log_min_duration=0', '-c', 'auto_explain.log_nested_statements=on'];
const pgs = await startEmbeddedPostgres({
  dataDir: await mkdtemp(join(tmpdir(), 'probe-')),
  // PGSS=1: pg_stat_statements over the nested statements of ledger_append, printed at the end (time per call).
  flags: [...(process.env.PGLOG ? explain : []), ...(process.env.PGSS ? ['-c', 'shared_preload_libraries=pg_stat_statements', '-c', 'pg_stat_statements.track=all', '-c', 'pg_stat_statements.track_planning=on'] : [])],
  log: (l) => {
    if (process.env.PGLOG && l.includes('duration')) console.log(l.slice(0, 160).replace(/\s+/g, ' '));
  },
});
// One connection: every append runs on the one backend whose CPU is read.
const { db } = createDatabase(pgs.url, 1);
await migrateToLatest(db);
const { rows: [backend] } = await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(db);
// PLAN_CACHE_MODE=force_generic_plan|force_custom_plan|auto: how the function's statements are planned on this session.
if (process.env.PLAN_CACHE_MODE) await sql`SELECT set_config('plan_cache_mode', ${process.env.PLAN_CACHE_MODE}, false)`.execute(db);
/** User and system CPU of the backend, in clock ticks (100 per second on Linux). */
const backendTicks = async (): Promise<{ user: number; system: number }> => {
  const fields = (await readFile(`/proc/${backend!.pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return { user: Number(fields[11]), system: Number(fields[12]) };
};
const store = new EventStoreRepository(db);
const mk = () => {
  const body = Buffer.from(JSON.stringify({ call_sid: randomUUID(), call_status: 'ringing', direction: 'outbound', from: '1', to: '2', account_sid: 'a', sip_status: 180 }));
  return {
    receipt: { provider: 'jambonz' as const, body, bodySha256: createHash('sha256').update(body).digest(), contentType: 'application/json', path: 'status', query: '', headers: { a: 'b' }, remoteAddr: null, receivedAt: new Date(), source: 'live' as const, signatureStatus: 'verified' as const, signatureTimestamp: null },
    events: translateJambonzWebhook(body, { provider: 'jambonz', path: 'status', query: new URLSearchParams(), contentType: null }),
  };
};
// Counted from the first measured batch on, not over the migrations (the extension is made before, then reset).
if (process.env.PGSS) await sql`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`.execute(db);
for (const size of (process.env.SIZES ?? "1,10,64,200,1000").split(",").map(Number)) {
  const rounds = Number(process.env.ROUNDS ?? 20);
  const batches = Array.from({ length: rounds }, () => Array.from({ length: size }, mk));
  for (let i = 0; i < 5; i += 1) await store.appendBatch(Array.from({ length: size }, mk));
  if (process.env.PGSS) await sql`SELECT pg_stat_statements_reset()`.execute(db);
  const t0 = performance.now();
  const ticks0 = await backendTicks();
  for (const batch of batches) await store.appendBatch(batch);
  const ticks1 = await backendTicks();
  const ms = (performance.now() - t0) / rounds;
  const us = (ticks: number) => ((ticks * 10_000) / (rounds * size)).toFixed(0);
  console.log(
    `batch ${size}: ${ms.toFixed(1)} ms/batch, ${((size * 1000) / ms).toFixed(0)} rec/s, ` +
      `PostgreSQL CPU ${us(ticks1.user - ticks0.user)} µs user + ${us(ticks1.system - ticks0.system)} µs system per record`,
  );
}
if (process.env.PGSS) {
  await sql`CREATE EXTENSION IF NOT EXISTS pg_stat_statements`.execute(db);
  const { rows } = await sql<{ calls: string; plan_ms: number; exec_ms: number; query: string }>`
    SELECT calls::text, total_plan_time AS plan_ms, total_exec_time AS exec_ms, left(regexp_replace(query, '[[:space:]]+', ' ', 'g'), 90) AS query
    FROM pg_stat_statements ORDER BY total_plan_time + total_exec_time DESC LIMIT 15`.execute(db);
  for (const r of rows) console.log(`${r.calls.padStart(6)} calls  plan ${r.plan_ms.toFixed(0).padStart(6)} ms  exec ${r.exec_ms.toFixed(0).padStart(6)} ms  ${r.query}`);
}
await db.destroy();
await pgs.stop();
