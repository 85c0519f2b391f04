/**
 * `node dist/bench/bulk-append.probe.js` (after `nest build ledger`): where the bulk import's time goes, without
 * HTTP and without the projector. Simulated history (ROWS, default 50,000) is translated into records, then
 * (1) staged (COPY text built in Node: CPU of the service per row), (2) appended through BulkAppendRepository in
 * chunks of CHUNK rows (default 5,000) on one fresh database, and (3) the same records through
 * EventStoreRepository.appendBatch in batches of 1,000 (the path the import used before) on another.
 * PGLOG=1 logs the plan and duration of every statement, those inside ledger_append_staged included.
 */
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDatabase, migrateToLatest, poolOf, startEmbeddedPostgres } from '../libs/db/src/index.js';
import { BulkAppendRepository, EventStoreRepository, StagedChunk, type WebhookRecord } from '../libs/event-store/src/index.js';
import { ProviderRegistry } from '../libs/providers/src/index.js';
import { buildWebhookRecord } from '../apps/ledger/src/webhooks/webhook-record.factory.js';
import { simulatedDeliveries } from './ingest.bench.js';
import { CpuMeter, postgresPids } from './bench-support.js';
import pg from 'pg';

const rows = Number(process.env.ROWS ?? 50_000);
const chunkRows = Number(process.env.CHUNK ?? 5000);
const explain = ['-c', 'session_preload_libraries=auto_explain', '-c', `auto_explain.log_min_duration=${process.env.PGLOG_MIN_MS ?? 0}`, '-c', 'auto_explain.log_nested_statements=on', ...(process.env.PGLOG_ANALYZE ? ['-c', 'auto_explain.log_analyze=on', '-c', 'auto_explain.log_timing=on'] : [])];
const dataDir = await mkdtemp(join(tmpdir(), 'probe-'));
const pgs = await startEmbeddedPostgres({
  dataDir,
  flags: process.env.PGLOG ? explain : [],
  log: (l) => {
    if (process.env.PGLOG) console.log(process.env.PGLOG_FULL ? l : l.slice(0, 200).replace(/\s+/g, ' '));
  },
});
const admin = new pg.Client({ connectionString: pgs.url });
await admin.connect();
const fresh = async (name: string) => {
  await admin.query(`CREATE DATABASE ${name}`);
  const u = new URL(pgs.url);
  u.pathname = `/${name}`;
  const h = createDatabase(u.toString(), 4);
  await migrateToLatest(h.db);
  // PROBE_SQL: statements (separated by ;) run on each fresh database after the migrations, to try a schema change.
  for (const stmt of (process.env.PROBE_SQL ?? '').split(';').filter((x) => x.trim())) await poolOf(h.db)!.query(stmt);
  return h;
};

const providers = new ProviderRegistry({ freeclimb: [], jambonz: [], twilio: [], restcomm: [] }, undefined);
const records: WebhookRecord[] = simulatedDeliveries('bench-import', rows, 'import').map((d) =>
  buildWebhookRecord(
    {
      provider: d.provider,
      rawBody: Buffer.from(d.body),
      contentType: d.contentType,
      path: d.path.replace(/^\/+/, ''),
      query: d.query,
      headers: {},
      remoteAddr: null,
      receivedAt: new Date(d.receivedAtMs),
      signature: { status: 'not-checked', timestamp: null },
      source: 'import',
    },
    providers,
  ),
);

const cpu0 = process.cpuUsage();
let t0 = performance.now();
const chunks: StagedChunk<number>[] = [];
let chunk = new StagedChunk<number>();
records.forEach((r, i) => {
  chunk.add(r, i);
  if (chunk.length >= chunkRows) {
    chunks.push(chunk);
    chunk = new StagedChunk();
  }
});
if (chunk.length) chunks.push(chunk);
const cpu1 = process.cpuUsage(cpu0);
console.log(`staging in Node: ${((cpu1.user + cpu1.system) / rows).toFixed(1)} µs CPU per row, ${(performance.now() - t0).toFixed(0)} ms wall`);

if (process.env.STAGE_ONLY) {
  await admin.end();
  await pgs.stop();
  process.exit(0);
}
const bulkDb = await fresh('probe_bulk');
const bulk = new BulkAppendRepository(poolOf(bulkDb.db)!);
t0 = performance.now();
// CPU of every PostgreSQL process: on a shared machine the wall time says little, the CPU per row says more.
const meter = new CpuMeter({ postgres: () => postgresPids(dataDir) });
let imported = 0;
for (const c of chunks) {
  const s = performance.now();
  const r = await bulk.appendChunk(c);
  imported += r.imported;
  if (process.env.VERBOSE) console.log(`chunk ${c.length}: ${(performance.now() - s).toFixed(0)} ms`);
}
let sec = (performance.now() - t0) / 1000;
const share = meter.stop();
console.log(
  `bulk: ${imported} imported in ${sec.toFixed(2)} s, ${(rows / sec).toFixed(0)} rows/s (database side of the chunks); ` +
    `PostgreSQL CPU ${(((share.cores.postgres ?? 0) * share.wallSec * 1e6) / rows).toFixed(1)} µs per row`,
);

if (!process.env.SKIP_OLD) {
  const oldDb = await fresh('probe_old');
  const store = new EventStoreRepository(oldDb.db);
  t0 = performance.now();
  for (let i = 0; i < records.length; i += 1000) await store.appendBatch(records.slice(i, i + 1000));
  sec = (performance.now() - t0) / 1000;
  console.log(`appendBatch(1000): ${(rows / sec).toFixed(0)} rows/s (record building and database)`);
  await oldDb.db.destroy();
}
await bulkDb.db.destroy();
await admin.end();
await pgs.stop();
