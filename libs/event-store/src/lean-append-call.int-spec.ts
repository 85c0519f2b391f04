import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEvent } from '@lib/ledger';
import type { Database } from '@lib/db';
import { createTestDatabase, jambonzRecord, type TestDatabase } from '@lib/testing';
import { EventStoreRepository } from './event-store.repository.js';
import { verifyStreamChain } from './hash-chain.js';
import type { WebhookRecord } from './webhook-record.js';

/**
 * Migration 20261205000100: the receipts' keys inserted by `ledger_append` itself, `ledger_ensure_partitions` only
 * outside the session's ensured month, and the one-statement path for batches whose streams get one event each.
 */
let tdb: TestDatabase;
let store: EventStoreRepository;
beforeAll(async () => {
  tdb = await createTestDatabase();
  store = new EventStoreRepository(tdb.db);
});
afterAll(async () => tdb.drop());

/** One delivery per leg, one event each: the batch shape of the one-statement path. */
const onePerLeg = (prefix: string, legs: number, round: number): WebhookRecord[] =>
  Array.from({ length: legs }, (_, l) =>
    jambonzRecord(`${prefix}-${l}`, { events: [newEvent('CallRinging', `${prefix}-${l}`, { sipStatus: 100 + round }, { accountId: 'acc' })] }),
  );

const at = (iso: string) => (r: WebhookRecord): WebhookRecord => ({ ...r, receipt: { ...r.receipt, receivedAt: new Date(iso) } });

const verifyLegs = async (prefix: string, legs: number, expectedPerLeg: number) => {
  for (let l = 0; l < legs; l += 1) {
    const stream = `callLeg-jambonz:${prefix}-${l}`;
    const links = await store.readChainLinks({ streamNames: [stream] });
    expect(links.map((x) => x.streamVersion)).toEqual(Array.from({ length: expectedPerLeg }, (_, i) => i + 1));
    const heads = await store.readStreamHeads([stream]);
    expect(heads.get(stream)!.version).toBe(expectedPerLeg);
    expect(verifyStreamChain(links, heads.get(stream))).toBeNull();
  }
};

const keysOf = async (receiptIds: string[]) =>
  (await sql<{ n: number }>`SELECT count(*)::int AS n FROM webhook_receipt_keys WHERE receipt_id = ANY (${receiptIds}::bigint[])`.execute(tdb.db)).rows[0]!.n;

describe('the lean append call (migration 20261205000100)', () => {
  it('chains one event per stream and batch from new heads and from existing ones, gap-free, one key per receipt', async () => {
    const outcomes = [];
    for (let round = 0; round < 5; round += 1) outcomes.push(...(await store.appendBatch(onePerLeg('one', 8, round))));
    expect(outcomes.every((o) => !o.duplicate && o.position !== null)).toBe(true);
    expect(await keysOf(outcomes.map((o) => o.receiptId))).toBe(40);
    await verifyLegs('one', 8, 5);
  });

  it('mixes such batches with batches that take the general path (duplicates, several events on a stream)', async () => {
    const first = onePerLeg('mix', 4, 0);
    await store.appendBatch(first);
    // A copy of a stored delivery among new ones: not every delivery is new.
    const withCopy = await store.appendBatch([first[0]!, ...onePerLeg('mix', 4, 1)]);
    expect(withCopy.map((o) => o.duplicate)).toEqual([true, false, false, false, false]);
    // Two events on one stream in one batch.
    const twice = jambonzRecord('mix-0', {
      events: [newEvent('CallRinging', 'mix-0', { sipStatus: 181 }, { accountId: 'acc' }), newEvent('CallRinging', 'mix-0', { sipStatus: 182 }, { accountId: 'acc' })],
    });
    await store.appendBatch([twice]);
    await store.appendBatch(onePerLeg('mix', 4, 2));
    const links = await store.readChainLinks({ streamNames: ['callLeg-jambonz:mix-0'] });
    expect(links.map((x) => x.streamVersion)).toEqual([1, 2, 3, 4, 5]);
    for (let l = 0; l < 4; l += 1) {
      const stream = `callLeg-jambonz:mix-${l}`;
      const heads = await store.readStreamHeads([stream]);
      expect(verifyStreamChain(await store.readChainLinks({ streamNames: [stream] }), heads.get(stream))).toBeNull();
    }
  });

  it('hands out gap-free versions and an intact chain to concurrent one-event-per-stream batches on shared legs', async () => {
    await Promise.all(Array.from({ length: 12 }, (_, round) => store.appendBatch(onePerLeg('race1', 4, round))));
    await verifyLegs('race1', 4, 12);
  });

  it('stores a delivery sent by concurrent batches once, and answers the others with it', async () => {
    const same = onePerLeg('dup-race', 3, 0);
    const outcomes = await Promise.all(Array.from({ length: 6 }, () => store.appendBatch(same)));
    for (let l = 0; l < 3; l += 1) {
      const ids = new Set(outcomes.map((o) => o[l]!.receiptId));
      expect(ids.size).toBe(1);
      expect(outcomes.filter((o) => !o[l]!.duplicate)).toHaveLength(1);
    }
    await verifyLegs('dup-race', 3, 1);
  });

  it('leaves the receipt key trigger on for every other writer, and the skip switch off after the call', async () => {
    await tdb.db.connection().execute(async (conn) => {
      await sql`BEGIN`.execute(conn);
      await new EventStoreRepository(conn).appendBatch(onePerLeg('switch', 1, 0));
      expect((await sql<{ v: string | null }>`SELECT current_setting('ledger.receipt_keys', true) AS v`.execute(conn)).rows[0]!.v).toBe('');
      const { rows } = await sql<{ id: string }>`
        INSERT INTO webhook_receipts (provider, body_sha256, dedupe_key, body, path, query, headers, received_at, source, signature_status, account_key)
        VALUES ('jambonz', sha256('by hand'::bytea), sha256('by hand'::bytea), 'by hand'::bytea, 'status', '', '{}', now(), 'live', 'verified', 'jambonz:')
        RETURNING id::text AS id`.execute(conn);
      expect(await keysOfOn(conn, rows[0]!.id)).toBe(1);
      await sql`COMMIT`.execute(conn);
    });
  });

  it('makes a month outside the one the session ensured, on the same connection', async () => {
    await tdb.db.connection().execute(async (conn) => {
      const one = new EventStoreRepository(conn);
      await one.appendBatch(onePerLeg('month-now', 1, 0));
      expect((await sql<{ v: string | null }>`SELECT current_setting('ledger.append_months', true) AS v`.execute(conn)).rows[0]!.v).toMatch(/\|/);
      const [o] = await one.appendBatch([at('2017-05-04T12:00:00Z')(jambonzRecord('month-old'))]);
      expect(o!.duplicate).toBe(false);
      const { rows } = await sql<{ t: string }>`SELECT tableoid::regclass::text AS t FROM events WHERE global_position = ${o!.position}::bigint`.execute(conn);
      expect(rows.map((r) => r.t)).toEqual(['events_p2017m05']);
      // A batch across two months is ensured and not cached as one month.
      const both = await one.appendBatch([at('2016-01-31T23:59:59Z')(jambonzRecord('month-a')), at('2016-02-01T00:00:01Z')(jambonzRecord('month-b'))]);
      expect(both.every((b) => !b.duplicate)).toBe(true);
      await one.appendBatch(onePerLeg('month-now', 1, 1));
    });
    await verifyLegs('month-now', 1, 2);
  });
});

const keysOfOn = async (conn: Database, id: string) =>
  (await sql<{ n: number }>`SELECT count(*)::int AS n FROM webhook_receipt_keys WHERE receipt_id = ${id}::bigint`.execute(conn)).rows[0]!.n;
