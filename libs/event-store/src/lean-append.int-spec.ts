import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEvent } from '@lib/ledger';
import { createTestDatabase, jambonzRecord, legacyAppendShim, type TestDatabase } from '@lib/testing';
import * as leanAppend from '../../../migrations/20261202000200_lean_append.js';
import * as getDeliveries from '../../../migrations/20261202000800_get_deliveries.js';
import * as partitionedStore from '../../../migrations/20261203000200_partitioned_store.js';
import * as accountKey from '../../../migrations/20261204000100_account_key.js';
import * as leanAppendCall from '../../../migrations/20261205000100_lean_append_call.js';
import { EventStoreRepository } from './event-store.repository.js';
import { verifyStreamChain } from './hash-chain.js';

/** The issue-14 write path: fewer indexes on `events`, versions and chains computed set-wise in `ledger_append`. */
let tdb: TestDatabase;
let store: EventStoreRepository;
beforeAll(async () => {
  tdb = await createTestDatabase();
  store = new EventStoreRepository(tdb.db);
});
afterAll(async () => tdb.drop());

/** `deliveries` deliveries of `perDelivery` events each, spread over `legs` leg streams in interleaved order. */
const interleaved = (prefix: string, deliveries: number, legs: number, perDelivery: number) =>
  Array.from({ length: deliveries }, (_, d) => {
    const legId = `${prefix}-${d % legs}`;
    return jambonzRecord(legId, { events: Array.from({ length: perDelivery }, (_, k) => newEvent('CallRinging', legId, { sipStatus: 100 + ((d * 10 + k) % 500) }, { accountId: 'acc' })) });
  });

const verifyLegs = async (prefix: string, legs: number, expectedPerLeg: number) => {
  for (let l = 0; l < legs; l += 1) {
    const stream = `callLeg-jambonz:${prefix}-${l}`;
    const links = await store.readChainLinks({ streamNames: [stream] });
    expect(links.map((x) => x.streamVersion)).toEqual(Array.from({ length: expectedPerLeg }, (_, i) => i + 1));
    const heads = await store.readStreamHeads([stream]);
    expect(verifyStreamChain(links, heads.get(stream))).toBeNull();
  }
};

describe('the lean append (migration 20261202000200)', () => {
  it('keeps on events only the indexes that a reader uses: no unique event id', async () => {
    const { rows } = await sql<{ indexname: string }>`SELECT indexname FROM pg_indexes WHERE tablename = 'events' ORDER BY indexname`.execute(tdb.db);
    expect(rows.map((r) => r.indexname)).toEqual(['events_child_leg', 'events_commit_order', 'events_pkey', 'events_receipt']);
    // Partitioned by month since 20261203000200: (stream_name, stream_version) is unique in each partition (a unique
    // index on the parent would have to contain received_at); the stream heads hand out the versions. With the
    // account key since 20261204000100 (an event carries its head's key, so it is as strong as without).
    const parts = await sql<{ tablename: string; n: number; unique_version: boolean }>`
      SELECT i.tablename, count(*)::int AS n, bool_or(i.indexdef LIKE 'CREATE UNIQUE INDEX % (stream_name, stream_version, account_key)') AS unique_version
      FROM pg_indexes i JOIN pg_class c ON c.relname = i.tablename AND c.relnamespace = i.schemaname::regnamespace JOIN pg_inherits h ON h.inhrelid = c.oid
      WHERE h.inhparent = 'events'::regclass GROUP BY i.tablename`.execute(tdb.db);
    expect(parts.rows.length).toBeGreaterThan(0);
    for (const p of parts.rows) expect(p).toEqual({ tablename: p.tablename, n: 5, unique_version: true });
  });

  it('builds no array by concatenation in a loop (quadratic in the events of a batch), the delivery append as migrated last', async () => {
    const { rows } = await sql<{ src: string }>`SELECT prosrc AS src FROM pg_proc WHERE proname = 'ledger_append' AND pronargs = 23`.execute(tdb.db);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.src).not.toMatch(/\bLOOP\b/);
    expect(rows[0]!.src).not.toMatch(/:=\s*\w+\s*\|\|/);
  });

  it('gives a large batch, several events per delivery on interleaved legs, gap-free versions and verifying chains', async () => {
    const outcomes = await store.appendBatch(interleaved('lean-big', 294, 7, 3));
    expect(outcomes.every((o) => !o.duplicate && o.events.length === 3)).toBe(true);
    expect(new Set(outcomes.map((o) => o.position)).size).toBe(294);
    await store.appendBatch(interleaved('lean-big', 14, 7, 1));
    // 42 deliveries of 3 events, then 2 of 1, on each of the 7 legs.
    await verifyLegs('lean-big', 7, 42 * 3 + 2);
  });

  it('chains on from heads written by the function it replaces, and the replaced one from its heads', async () => {
    // The later migrations that replace (or edit) ledger_append again are undone first, and redone after.
    await leanAppendCall.down(tdb.db);
    await accountKey.down(tdb.db);
    await partitionedStore.down(tdb.db);
    await getDeliveries.down(tdb.db);
    await leanAppend.down(tdb.db);
    await legacyAppendShim(tdb.db, 'create');
    try {
      await store.appendBatch(interleaved('lean-cross', 20, 3, 2));
      const before = await sql<{ n: string }>`SELECT count(*)::text AS n FROM pg_indexes WHERE indexname = 'events_event_id_key'`.execute(tdb.db);
      expect(before.rows[0]!.n).toBe('1');
    } finally {
      await legacyAppendShim(tdb.db, 'drop');
      await leanAppend.up(tdb.db);
      await getDeliveries.up(tdb.db);
      await partitionedStore.up(tdb.db);
      await accountKey.up(tdb.db);
    }
    await store.appendBatch(interleaved('lean-cross', 21, 3, 2));
    for (let l = 0; l < 3; l += 1) {
      const stream = `callLeg-jambonz:lean-cross-${l}`;
      const links = await store.readChainLinks({ streamNames: [stream] });
      expect(links.length).toBeGreaterThan(20);
      expect(verifyStreamChain(links, (await store.readStreamHeads([stream])).get(stream))).toBeNull();
    }
  });

  it('hands out gap-free versions and an intact chain to concurrent batches on shared legs', async () => {
    await Promise.all(Array.from({ length: 12 }, () => store.appendBatch(interleaved('lean-race', 10, 2, 2))));
    await verifyLegs('lean-race', 2, 12 * 5 * 2);
  });
});
