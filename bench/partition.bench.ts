/**
 * `npm run bench:partition`: the partitioned store at two sizes, side by side in one run (issue 16): the p99 of
 * one append (EventStoreRepository.appendBatch, the live path, one delivery of two events into the current month)
 * and the p99 of one page of the commit-order cursor (readAfter, 500 events, from random points of the history),
 * in a store of PARTITION_SMALL (100,000) and one of PARTITION_LARGE (10,000,000) events: two databases of one
 * server, measured in interleaved rounds so that the machine's other load falls on both alike. Target: the large
 * figures within 1.5x of the small ones.
 *
 * The store is filled set-wise (INSERT ... SELECT generate_series, in chunks of a million rows), not through HTTP:
 * receipts and their dedupe keys, two events per receipt over 12 months of partitions, and the stream heads, in the
 * shapes the appends write (the hashes are not a real chain: only the appends below are timed, on new legs).
 * Not part of `npm run bench`: filling ten million events takes minutes. On a shared machine the absolute figures
 * follow the other tenants; the ratio of the two sizes is the figure to read.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { createDatabase, migrateToLatest, startEmbeddedPostgres } from '../libs/db/src/index.js';
import { COLUMNS, EventStoreRepository, isCurrentTranslation, readAfter, type WebhookRecord } from '../libs/event-store/src/index.js';
import { newEvent } from '../libs/ledger/src/index.js';
import { databaseUrl, fmt, percentile } from './bench-support.js';

const SMALL = Number(process.env.PARTITION_SMALL ?? 100_000);
const LARGE = Number(process.env.PARTITION_LARGE ?? 10_000_000);
const APPENDS = Number(process.env.PARTITION_APPENDS ?? 1500);
const READS = Number(process.env.PARTITION_READS ?? 300);
const PAGE = 500;
const MONTHS = 12;
const CHUNK = 1_000_000;

const dataDir = await mkdtemp(join(tmpdir(), 'partition-bench-'));
const pgs = await startEmbeddedPostgres({ dataDir, flags: ['-c', 'max_wal_size=8GB', '-c', 'checkpoint_timeout=30min', '-c', 'shared_buffers=512MB'] });
const admin = createDatabase(pgs.url, 1);
for (const name of ['bench_small', 'bench_large']) await sql`CREATE DATABASE ${sql.id(name)}`.execute(admin.db);
const small = createDatabase(databaseUrl(pgs.url, 'bench_small'), 2);
const large = createDatabase(databaseUrl(pgs.url, 'bench_large'), 2);
type Db = typeof small.db;

/** Adds events (two per receipt, five per stream) numbered from `from` (an even number) up to `to`, over 12 months. */
const fill = async (db: Db, from: number, to: number) => {
  await sql`SELECT ledger_ensure_partitions(ARRAY(SELECT generate_series(now() - interval '${sql.raw(String(MONTHS))} months', now(), interval '1 month')))`.execute(db);
  await sql`ALTER TABLE webhook_receipts DISABLE TRIGGER webhook_receipts_key`.execute(db);
  for (let lo = from; lo < to; lo += CHUNK) {
    const hi = Math.min(to, lo + CHUNK);
    const t0 = performance.now();
    // Receipt r lands on day r mod 360 of the 12 months before the current one: every size fills every month.
    const received = sql.raw(`date_trunc('month', now()) - interval '${MONTHS} months' + (r % 360) * interval '1 day' + ((r / 360) % 86400) * interval '1 second'`);
    await sql`
      INSERT INTO webhook_receipt_keys (receipt_id, provider, body_sha256, dedupe_key, received_at, account_key)
      SELECT r + 1, 'jambonz', sha256(('bench-' || r)::bytea), sha256(('bench-' || r)::bytea), ${received}, 'jambonz:acc-' || ((2 * r / 5) % 97)
      FROM generate_series(${lo / 2}::bigint, ${hi / 2 - 1}::bigint) AS r`.execute(db);
    await sql`
      INSERT INTO webhook_receipts (id, provider, body_sha256, dedupe_key, body, content_type, path, query, headers, remote_addr, received_at,
        source, signature_status, signature_timestamp, account_key)
      OVERRIDING SYSTEM VALUE
      SELECT r + 1, 'jambonz', sha256(('bench-' || r)::bytea), NULL,
        convert_to('{"call_sid":"bench-' || (r / 2) || '","call_status":"in-progress","direction":"outbound","from":"+15550100","to":"+15550111","sip_status":200,"n":' || r || '}', 'UTF8'),
        'application/json', 'status', '', '{"content-type":"application/json"}'::jsonb, '127.0.0.1', ${received}, 'live', 'verified', NULL, 'jambonz:acc-' || ((2 * r / 5) % 97)
      FROM generate_series(${lo / 2}::bigint, ${hi / 2 - 1}::bigint) AS r`.execute(db);
    await sql`
      INSERT INTO events (global_position, event_id, stream_name, stream_version, type, schema_version, data, metadata, receipt_id,
        occurred_at, received_at, prev_hash, hash, chain_version, account_key)
      OVERRIDING SYSTEM VALUE
      SELECT e + 1, md5('bench-event-' || e)::uuid, 'callLeg-jambonz:bench-' || (e / 5), (e % 5) + 1, 'CallRinging', 1,
        '{"sipStatus":180}'::jsonb, ('{"provider":"jambonz","legId":"bench-' || (e / 5) || '","accountId":"acc-' || ((e / 5) % 97) || '","source":"live"}')::jsonb,
        e / 2 + 1, NULL, w.received_at, CASE WHEN e % 5 = 0 THEN NULL ELSE sha256(('h' || (e - 1))::bytea) END, sha256(('h' || e)::bytea), 2, 'jambonz:acc-' || ((e / 5) % 97)
      FROM generate_series(${lo}::bigint, ${hi - 1}::bigint) AS e JOIN webhook_receipt_keys w ON w.receipt_id = e / 2 + 1`.execute(db);
    console.log(`  filled events ${fmt(lo)}..${fmt(hi)} in ${fmt((performance.now() - t0) / 1000, 1)} s`);
  }
  await sql`ALTER TABLE webhook_receipts ENABLE TRIGGER webhook_receipts_key`.execute(db);
  await sql`
    INSERT INTO streams (stream_name, version, last_hash, account_key)
    SELECT 'callLeg-jambonz:bench-' || s, 5, sha256(('h' || (s * 5 + 4))::bytea), 'jambonz:acc-' || (s % 97) FROM generate_series(${from / 5}::bigint, ${to / 5 - 1}::bigint) AS s
    ON CONFLICT (stream_name) DO NOTHING`.execute(db);
  await sql`SELECT setval(pg_get_serial_sequence('events', 'global_position'), ${to + 1})`.execute(db);
  await sql`SELECT setval(pg_get_serial_sequence('webhook_receipts', 'id'), ${to / 2 + 1})`.execute(db);
  await sql`VACUUM ANALYZE`.execute(db);
};

const record = (): WebhookRecord => {
  const leg = randomUUID();
  const body = Buffer.from(JSON.stringify({ call_sid: leg, call_status: 'ringing', sip_status: 180 }));
  return {
    receipt: {
      provider: 'jambonz',
      body,
      bodySha256: createHash('sha256').update(body).digest(),
      contentType: 'application/json',
      path: 'status',
      query: '',
      headers: { 'content-type': 'application/json' },
      remoteAddr: '127.0.0.1',
      receivedAt: new Date(),
      source: 'live',
      signatureStatus: 'verified',
      signatureTimestamp: null,
    },
    events: [newEvent('CallRinging', leg, { sipStatus: 100 }, { accountId: 'acc' }), newEvent('CallRinging', leg, { sipStatus: 180 }, { accountId: 'acc' })],
  };
};

interface Samples {
  appends: number[];
  reads: number[];
}

/** One round on one store: some appends of one new delivery, then some cursor pages from random points of its history. */
const round = async (db: Db, events: number, into: Samples, appends: number, reads: number) => {
  const store = new EventStoreRepository(db);
  for (let i = 0; i < appends; i += 1) {
    const r = record();
    const t0 = performance.now();
    await store.appendBatch([r]);
    into.appends.push(performance.now() - t0);
  }
  const starts = await sql<{ xid: string; position: string }>`
    SELECT transaction_id::text AS xid, global_position::text AS position FROM events
    WHERE global_position = ANY (ARRAY(SELECT (random() * ${events - PAGE})::bigint + 1 FROM generate_series(1, ${reads})))`.execute(db);
  for (const c of starts.rows) {
    const t0 = performance.now();
    const page = await readAfter(db, c, PAGE);
    into.reads.push(performance.now() - t0);
    if (page.events.length === 0) throw new Error('an empty page from inside the history');
  }
};

const explainSlowRead = async (db: Db, events: number) => {
  const c = (await sql<{ xid: string; position: string }>`
    SELECT transaction_id::text AS xid, global_position::text AS position FROM events WHERE global_position = ${Math.floor(events / 3)}`.execute(db)).rows[0]!;
  const plan = await sql<{ 'QUERY PLAN': string }>`EXPLAIN (ANALYZE, BUFFERS)
    SELECT ${COLUMNS} FROM events
    WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
      AND (transaction_id, global_position) > (${c.xid}::xid8, ${c.position}::bigint)
      AND ${isCurrentTranslation()}
    ORDER BY events.transaction_id, events.global_position LIMIT ${PAGE}`.execute(db);
  console.log(plan.rows.map((r) => r['QUERY PLAN']).join('\n'));
};

try {
  for (const h of [small, large]) await migrateToLatest(h.db);
  console.log(`partition bench: ${fmt(SMALL)} and ${fmt(LARGE)} events, each over ${MONTHS} monthly partitions, in two databases of one server;`);
  console.log(`${APPENDS} appends and ${READS} cursor pages of ${PAGE} on each, in 10 interleaved rounds (small, large, small, ...)`);
  await fill(small.db, 0, SMALL);
  await fill(large.db, 0, LARGE);
  const s1: Samples = { appends: [], reads: [] };
  const s2: Samples = { appends: [], reads: [] };
  await round(small.db, SMALL, { appends: [], reads: [] }, 50, 20);
  await round(large.db, LARGE, { appends: [], reads: [] }, 50, 20);
  for (let i = 0; i < 10; i += 1) {
    await round(small.db, SMALL, s1, APPENDS / 10, READS / 10);
    await round(large.db, LARGE, s2, APPENDS / 10, READS / 10);
  }
  if (process.env.PARTITION_EXPLAIN) await explainSlowRead(large.db, LARGE);
  const parts = async (db: Db) => (await sql<{ n: number }>`SELECT count(*)::int AS n FROM ledger_partitions`.execute(db)).rows[0]!.n;
  const row = (label: string, q: number, pick: (x: Samples) => number[]) => {
    const a = percentile(pick(s1), q);
    const b = percentile(pick(s2), q);
    return `${label.padEnd(28)} ${fmt(a, 2).padStart(10)} ms ${fmt(b, 2).padStart(10)} ms   ${fmt(b / a, 2)}x`;
  };
  console.log(`\n${''.padEnd(28)} ${fmt(SMALL).padStart(13)} ${fmt(LARGE).padStart(13)}   ratio (target <= 1.5x)`);
  console.log(`${'partitions'.padEnd(28)} ${String(await parts(small.db)).padStart(13)} ${String(await parts(large.db)).padStart(13)}`);
  console.log(row('append p50', 0.5, (x) => x.appends));
  console.log(row('append p99', 0.99, (x) => x.appends));
  console.log(row(`cursor page (${PAGE}) p50`, 0.5, (x) => x.reads));
  console.log(row(`cursor page (${PAGE}) p99`, 0.99, (x) => x.reads));
} finally {
  for (const h of [small, large, admin]) await h.db.destroy();
  await pgs.stop();
  await rm(dataDir, { recursive: true, force: true });
}
