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

  it('chains several events per stream and batch, from new and from existing heads, gap-free', async () => {
    // Deliveries of 1 to 3 events each on their own leg; in the fifth round two deliveries share a leg (not consecutive).
    const round = (r: number): WebhookRecord[] =>
      Array.from({ length: 6 }, (_, l) => {
        const leg = `many-${r === 4 && l === 5 ? 0 : l}`;
        return jambonzRecord(leg, { events: Array.from({ length: 1 + ((l + r) % 3) }, (_, k) => newEvent('CallRinging', leg, { sipStatus: 100 + r * 10 + k }, { accountId: 'acc' })) });
      });
    const expected = new Map<number, number>();
    for (let r = 0; r < 5; r += 1) {
      const batch = round(r);
      const outcomes = await store.appendBatch(batch);
      expect(outcomes.every((o) => !o.duplicate && o.position !== null)).toBe(true);
      batch.forEach((rec) => {
        const l = Number(rec.events[0]!.legId!.split('-')[1]);
        expected.set(l, (expected.get(l) ?? 0) + rec.events.length);
      });
    }
    for (const [l, n] of expected) {
      const stream = `callLeg-jambonz:many-${l}`;
      const links = await store.readChainLinks({ streamNames: [stream] });
      expect(links.map((x) => x.streamVersion)).toEqual(Array.from({ length: n }, (_, i) => i + 1));
      const heads = await store.readStreamHeads([stream]);
      expect(heads.get(stream)!.version).toBe(n);
      expect(verifyStreamChain(links, heads.get(stream))).toBeNull();
    }
  });

  it('hands out gap-free versions and an intact chain to concurrent batches of several events per stream', async () => {
    const batch = (r: number): WebhookRecord[] =>
      Array.from({ length: 4 }, (_, l) =>
        jambonzRecord(`race3-${l}`, { events: Array.from({ length: 3 }, (_, k) => newEvent('CallRinging', `race3-${l}`, { sipStatus: 100 + r * 3 + k }, { accountId: 'acc' })) }),
      );
    await Promise.all(Array.from({ length: 10 }, (_, r) => store.appendBatch(batch(r))));
    await verifyLegs('race3', 4, 30);
  });

  it('writes each head once per batch on the one-statement paths, twice on the general one (a duplicate in the batch)', async () => {
    /** Head rows inserted and updated by one appendBatch (the session's counts not yet flushed, before and after). */
    const headWrites = async (records: WebhookRecord[]) =>
      tdb.db.connection().execute(async (conn) => {
        const counts = async () =>
          (
            await sql<{ ins: number; upd: number }>`
              SELECT pg_stat_get_xact_tuples_inserted('streams'::regclass)::int AS ins, pg_stat_get_xact_tuples_updated('streams'::regclass)::int AS upd`.execute(conn)
          ).rows[0]!;
        await sql`BEGIN`.execute(conn);
        const before = await counts();
        await new EventStoreRepository(conn).appendBatch(records);
        const after = await counts();
        await sql`COMMIT`.execute(conn);
        return { ins: after.ins - before.ins, upd: after.upd - before.upd };
      });
    const threeEach = (r: number) =>
      Array.from({ length: 4 }, (_, l) =>
        jambonzRecord(`once-${l}`, { events: Array.from({ length: 3 }, (_, k) => newEvent('CallRinging', `once-${l}`, { sipStatus: 100 + r * 3 + k }, { accountId: 'acc' })) }),
      );
    expect(await headWrites(onePerLeg('once1', 4, 0))).toEqual({ ins: 4, upd: 0 });
    expect(await headWrites(onePerLeg('once1', 4, 1))).toEqual({ ins: 0, upd: 4 });
    expect(await headWrites(threeEach(0))).toEqual({ ins: 4, upd: 0 });
    expect(await headWrites(threeEach(1))).toEqual({ ins: 0, upd: 4 });
    // One leg's events spread over two deliveries apart: still one write of each head.
    const spread = [...threeEach(2), jambonzRecord('once-0', { events: [newEvent('CallRinging', 'once-0', { sipStatus: 199 }, { accountId: 'acc' })] })];
    expect(await headWrites(spread)).toEqual({ ins: 0, upd: 4 });
    // A copy of a stored delivery in the batch: the general path, the upsert, then the hash (tails).
    const copy = threeEach(3);
    await store.appendBatch([copy[0]!]);
    expect(await headWrites(copy)).toEqual({ ins: 0, upd: 6 });
    await verifyLegs('once1', 4, 2);
    for (let l = 0; l < 4; l += 1) {
      const stream = `callLeg-jambonz:once-${l}`;
      const links = await store.readChainLinks({ streamNames: [stream] });
      expect(links).toHaveLength(l === 0 ? 13 : 12);
      expect(verifyStreamChain(links, (await store.readStreamHeads([stream])).get(stream))).toBeNull();
    }
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

  it("finds a duplicate's original through the key indexes, without reading the key table through", async () => {
    for (let i = 0; i < 4; i += 1) await store.appendBatch(onePerLeg(`bulk-${i}`, 50, 0));
    await sql`ANALYZE webhook_receipt_keys`.execute(tdb.db);
    const original = onePerLeg('dup-scan', 2, 0);
    const [first] = await store.appendBatch(original);
    await tdb.db.connection().execute(async (conn) => {
      const seqRead = async () =>
        (await sql<{ n: number }>`SELECT pg_stat_get_xact_tuples_returned('webhook_receipt_keys'::regclass)::int AS n`.execute(conn)).rows[0]!.n;
      await sql`BEGIN`.execute(conn);
      const before = await seqRead();
      const outcomes = await new EventStoreRepository(conn).appendBatch([...onePerLeg('dup-scan-new', 1, 0), original[0]!]);
      const after = await seqRead();
      await sql`COMMIT`.execute(conn);
      expect(outcomes[1]).toMatchObject({ duplicate: true, receiptId: first!.receiptId, position: first!.position });
      expect(after - before).toBe(0);
    });
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
