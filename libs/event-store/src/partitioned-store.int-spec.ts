import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, type DatabaseHandle } from '@lib/db';
import { newEvent } from '@lib/ledger';
import { createTestDatabase, jambonzRecord, type TestDatabase } from '@lib/testing';
import { readAfter, START, type Cursor } from './event-reader.js';
import { EventStoreRepository } from './event-store.repository.js';
import { verifyStreamChain } from './hash-chain.js';
import * as partitionedStore from '../../../migrations/20261203000200_partitioned_store.js';
import * as accountKey from '../../../migrations/20261204000100_account_key.js';
import * as leanAppendCall from '../../../migrations/20261205000100_lean_append_call.js';
import { PartitionsRepository } from './partitions.repository.js';
import type { WebhookRecord } from './webhook-record.js';

/**
 * The partitioned store (migration 20261203000200): receipts and events in monthly partitions by received_at, with
 * dedupe, per-stream order, the commit-order cursor and the chain unchanged across partition boundaries.
 */
let tdb: TestDatabase;
let app: DatabaseHandle;
let store: EventStoreRepository;
let appStore: EventStoreRepository;
beforeAll(async () => {
  tdb = await createTestDatabase();
  app = createDatabase(tdb.appUrl, 6);
  store = new EventStoreRepository(tdb.db);
  appStore = new EventStoreRepository(app.db);
});
afterAll(async () => {
  await app.db.destroy();
  await tdb.drop();
});

const at = (iso: string) => (r: WebhookRecord): WebhookRecord => ({ ...r, receipt: { ...r.receipt, receivedAt: new Date(iso) } });
const ringing = (legId: string, sipStatus: number) => newEvent('CallRinging', legId, { sipStatus }, { accountId: 'acc' });

const partitionOf = async (table: 'events' | 'webhook_receipts', where: string) =>
  (await sql<{ part: string }>`SELECT tableoid::regclass::text AS part FROM ${sql.table(table)} WHERE ${sql.raw(where)}`.execute(tdb.db)).rows.map((r) => r.part);

describe('the partitioned store', () => {
  it('partitions receipts and events by month, with the current month and the months ahead made', async () => {
    const kinds = await sql<{ relname: string; relkind: string }>`
      SELECT relname, relkind::text FROM pg_class WHERE relname IN ('events', 'webhook_receipts', 'webhook_receipt_keys') ORDER BY relname`.execute(tdb.db);
    expect(kinds.rows).toEqual([
      { relname: 'events', relkind: 'p' },
      { relname: 'webhook_receipt_keys', relkind: 'r' },
      { relname: 'webhook_receipts', relkind: 'p' },
    ]);
    const partitions = new PartitionsRepository(app.db);
    await partitions.ensureAhead(4);
    const months = (await partitions.list()).map((p) => p.month);
    const now = new Date();
    for (let k = 0; k <= 4; k += 1) {
      const m = new Date(Date.UTC(now.getUTCFullYear(), now.getUTCMonth() + k, 1)).toISOString().slice(0, 10);
      expect(months).toContain(m);
    }
    expect(await partitions.ensureAhead(4)).toBe(0);
  });

  it('keeps one stream chained and gap-free across a month boundary, each event in its receipt month', async () => {
    const leg = 'boundary-leg';
    await store.appendBatch([at('2025-01-31T23:59:59.900Z')(jambonzRecord(leg, { events: [ringing(leg, 100), ringing(leg, 180)] }))]);
    await store.appendBatch([at('2025-02-01T00:00:00.100Z')(jambonzRecord(leg, { events: [ringing(leg, 183)] }))]);
    await store.appendBatch([at('2025-01-31T23:59:59.950Z')(jambonzRecord(leg))]);
    const stream = `callLeg-jambonz:${leg}`;
    const links = await store.readChainLinks({ streamNames: [stream] });
    expect(links.map((l) => l.streamVersion)).toEqual([1, 2, 3, 4]);
    expect(verifyStreamChain(links, (await store.readStreamHeads([stream])).get(stream))).toBeNull();
    expect(await partitionOf('events', `stream_name = '${stream}' ORDER BY stream_version`)).toEqual(['events_p2025m01', 'events_p2025m01', 'events_p2025m02', 'events_p2025m01']);
    const receiptMonths = await sql<{ same: boolean }>`
      SELECT bool_and(date_trunc('month', e.received_at AT TIME ZONE 'UTC') = date_trunc('month', r.received_at AT TIME ZONE 'UTC')) AS same
      FROM events e JOIN webhook_receipts r ON r.id = e.receipt_id WHERE e.stream_name = ${stream}`.execute(tdb.db);
    expect(receiptMonths.rows[0]!.same).toBe(true);
  });

  it('dedupes a delivery against its original in another month, answering with the original', async () => {
    const body = JSON.stringify({ dedupe: 'across-months' });
    const [first] = await store.appendBatch([at('2025-03-15T10:00:00Z')(jambonzRecord('dup-leg', { body }))]);
    const [again] = await appStore.appendBatch([at('2025-04-02T10:00:00Z')(jambonzRecord('dup-leg', { body }))]);
    expect(first!.duplicate).toBe(false);
    expect(again).toEqual({ ...first, duplicate: true });
    const n = await sql<{ n: number }>`SELECT count(*)::int AS n FROM webhook_receipts WHERE body = ${Buffer.from(body)}`.execute(tdb.db);
    expect(n.rows[0]!.n).toBe(1);
  });

  it('reads in commit order across partitions: the cursor pages through every event once', async () => {
    const before = await drain(START);
    const stamps = ['2025-05-20T00:00:00Z', '2025-06-20T00:00:00Z', '2025-05-21T00:00:00Z', '2025-07-01T00:00:00Z', '2025-05-22T00:00:00Z'];
    const written: string[] = [];
    for (const [i, s] of stamps.entries()) {
      const [o] = await store.appendBatch([at(s)(jambonzRecord(`cursor-${i}`))]);
      written.push(o!.position!);
    }
    const after = await drain(before.cursor);
    expect(after.positions).toEqual(written);
  });

  it('makes the month of an append that has none, as the service role, which may not make tables itself', async () => {
    const [o] = await appStore.appendBatch([at('2019-07-04T12:00:00Z')(jambonzRecord('old-month'))]);
    expect(o!.duplicate).toBe(false);
    expect(await partitionOf('events', `global_position = ${o!.position}`)).toEqual(['events_p2019m07']);
    await expect(sql`CREATE TABLE events_p2019m09 (LIKE events)`.execute(app.db)).rejects.toThrow(/permission denied/);
    await expect(sql`SELECT ledger_create_month('2019-09-01')`.execute(app.db)).rejects.toThrow(/permission denied/);
  });

  it('makes one new month once when concurrent batches all need it', async () => {
    const outcomes = await Promise.all(
      Array.from({ length: 6 }, (_, i) => appStore.appendBatch([at(`2018-03-0${i + 1}T08:00:00Z`)(jambonzRecord(`race-${i}`))])),
    );
    expect(outcomes.flat().every((o) => !o.duplicate && o.position !== null)).toBe(true);
    const n = await sql<{ n: number }>`SELECT count(*)::int AS n FROM ledger_partitions WHERE month = '2018-03-01'`.execute(tdb.db);
    expect(n.rows[0]!.n).toBe(1);
  });

  it('refuses UPDATE, DELETE and TRUNCATE on every partition and on the keys, to the owner too', async () => {
    for (const stmt of [
      sql`DELETE FROM events_p2025m01`,
      sql`UPDATE webhook_receipts_p2025m01 SET body = '\\x00'::bytea`,
      sql`TRUNCATE events_p2025m02`,
      sql`TRUNCATE webhook_receipts_p2025m02 CASCADE`,
      sql`DELETE FROM webhook_receipt_keys`,
      sql`TRUNCATE webhook_receipt_keys CASCADE`,
    ]) {
      await expect(stmt.execute(tdb.db)).rejects.toThrow(/append-only/);
    }
  });

  it('migrates a store in place both ways: same rows, positions, xids and hashes, and appends go on after them', async () => {
    const snapshot = async () =>
      (
        await sql<{ row: string }>`
          SELECT concat_ws('|', e.global_position, e.transaction_id, e.stream_name, e.stream_version, encode(e.hash, 'hex'), e.receipt_id,
            encode(r.body_sha256, 'hex'), r.received_at) AS row
          FROM events e JOIN webhook_receipts r ON r.id = e.receipt_id ORDER BY e.global_position`.execute(tdb.db)
      ).rows.map((r) => r.row);
    const before = await snapshot();
    // The account key (20261204000100) is on top of it: undone first, redone last (its backfill then runs on these rows).
    await leanAppendCall.down(tdb.db);
    await accountKey.down(tdb.db);
    await partitionedStore.down(tdb.db);
    const plain = await sql<{ relkind: string }>`SELECT relkind::text FROM pg_class WHERE relname = 'events'`.execute(tdb.db);
    expect(plain.rows[0]!.relkind).toBe('r');
    expect(await snapshot()).toEqual(before);
    await partitionedStore.up(tdb.db);
    await accountKey.up(tdb.db);
    expect(await snapshot()).toEqual(before);
    const top = before.map((r) => BigInt(r.split('|')[0]!)).reduce((a, b) => (a > b ? a : b));
    const [o] = await appStore.appendBatch([at('2025-01-31T12:00:00Z')(jambonzRecord('boundary-leg'))]);
    expect(BigInt(o!.position!)).toBeGreaterThan(top);
    const stream = 'callLeg-jambonz:boundary-leg';
    const links = await store.readChainLinks({ streamNames: [stream] });
    expect(links.map((l) => l.streamVersion)).toEqual([1, 2, 3, 4, 5]);
    expect(verifyStreamChain(links, (await store.readStreamHeads([stream])).get(stream))).toBeNull();
    const [dup] = await appStore.appendBatch([at('2025-09-01T00:00:00Z')(jambonzRecord('dup-leg', { body: JSON.stringify({ dedupe: 'across-months' }) }))]);
    expect(dup!.duplicate).toBe(true);
  });
});

const drain = async (from: Cursor): Promise<{ cursor: Cursor; positions: string[] }> => {
  let cursor = from;
  const positions: string[] = [];
  for (;;) {
    const page = await readAfter(tdb.db, cursor, 2);
    if (page.events.length === 0) return { cursor, positions };
    positions.push(...page.events.map((e) => e.position));
    cursor = page.next;
  }
};
