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
  flags: process.env.PGLOG ? explain : [],
  log: (l) => {
    if (process.env.PGLOG && l.includes('duration')) console.log(l.slice(0, 160).replace(/\s+/g, ' '));
  },
});
// One connection: every append runs on the one backend whose CPU is read.
const { db } = createDatabase(pgs.url, 1);
await migrateToLatest(db);
const { rows: [backend] } = await sql<{ pid: number }>`SELECT pg_backend_pid() AS pid`.execute(db);
/** utime + stime of the backend, in clock ticks (100 per second on Linux). */
const backendTicks = async (): Promise<number> => {
  const fields = (await readFile(`/proc/${backend!.pid}/stat`, 'utf8')).split(') ')[1]!.split(' ');
  return Number(fields[11]) + Number(fields[12]);
};
const store = new EventStoreRepository(db);
const mk = () => {
  const body = Buffer.from(JSON.stringify({ call_sid: randomUUID(), call_status: 'ringing', direction: 'outbound', from: '1', to: '2', account_sid: 'a', sip_status: 180 }));
  return {
    receipt: { provider: 'jambonz' as const, body, bodySha256: createHash('sha256').update(body).digest(), contentType: 'application/json', path: 'status', query: '', headers: { a: 'b' }, remoteAddr: null, receivedAt: new Date(), source: 'live' as const, signatureStatus: 'verified' as const, signatureTimestamp: null },
    events: translateJambonzWebhook(body, { provider: 'jambonz', path: 'status', query: new URLSearchParams(), contentType: null }),
  };
};
for (const size of (process.env.SIZES ?? "1,10,64,200,1000").split(",").map(Number)) {
  const rounds = Number(process.env.ROUNDS ?? 20);
  const batches = Array.from({ length: rounds }, () => Array.from({ length: size }, mk));
  const t0 = performance.now();
  const ticks0 = await backendTicks();
  for (const batch of batches) await store.appendBatch(batch);
  const ticks = (await backendTicks()) - ticks0;
  const ms = (performance.now() - t0) / rounds;
  const cpuUs = (ticks * 10_000) / (rounds * size);
  console.log(`batch ${size}: ${ms.toFixed(1)} ms/batch, ${((size * 1000) / ms).toFixed(0)} rec/s, PostgreSQL CPU ${cpuUs.toFixed(0)} µs/record`);
}
await db.destroy();
await pgs.stop();
