import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEvent } from '@lib/ledger';
import { createTestDatabase, jambonzRecord, type TestDatabase } from '@lib/testing';
import * as leanCheckpointHeads from '../../../migrations/20261206000200_lean_checkpoint_heads.js';
import { headsSha256 } from './checkpoint.js';
import { CheckpointRepository } from './checkpoint.repository.js';
import { EventStoreRepository } from './event-store.repository.js';

/**
 * Checkpoints read their window a page at a time outside the transaction that writes them (issue 13: one minute's
 * heads read and written in one go stalled the webhooks sharing the machine), and take a checkpoint only if no
 * other process took one meanwhile.
 */
let tdb: TestDatabase;
let store: EventStoreRepository;
beforeAll(async () => {
  tdb = await createTestDatabase();
  store = new EventStoreRepository(tdb.db);
});
afterAll(async () => tdb.drop());

/** `deliveries` deliveries of two events each over `legs` legs, interleaved, so that heads move several versions. */
const append = async (prefix: string, deliveries: number, legs: number) => {
  const records = Array.from({ length: deliveries }, (_, d) => {
    const legId = `${prefix}-${d % legs}`;
    return jambonzRecord(legId, { events: [0, 1].map((k) => newEvent('CallRinging', legId, { sipStatus: 180 + k }, { accountId: 'acc' })) });
  });
  for (let i = 0; i < records.length; i += 7) await store.appendBatch(records.slice(i, i + 7));
};

describe('CheckpointRepository', () => {
  it('reads the window a page at a time and stores the same heads as the one-statement read, covering every leg once', async () => {
    const repo = new CheckpointRepository(tdb.db);
    await repo.create(null, false);
    await append('paged', 60, 13);
    // Pages of 5 events: 120 events in 24 pages, each leg's events spread over many of them.
    repo.pageRows = 5;
    const c = (await repo.create(null, false))!;
    expect(c.headCount).toBe(13);
    const stored = await repo.heads(c.seq);
    const recomputed = await repo.recomputeHeads(c);
    const byName = (a: { streamName: string }, b: { streamName: string }) => a.streamName.localeCompare(b.streamName);
    expect([...stored].sort(byName)).toEqual([...recomputed].sort(byName));
    expect(headsSha256(stored)).toBe(c.headsSha256);
    // Each leg had 60 / 13 deliveries of two events: its head is its last version, as the stream head says.
    const streamHeads = await store.readStreamHeads(stored.map((h) => h.streamName));
    for (const h of stored) expect(h).toMatchObject({ version: streamHeads.get(h.streamName)!.version, hash: streamHeads.get(h.streamName)!.lastHash!.toString('hex') });
    // 13 new streams joined the count the previous checkpoint left.
    const previous = (await repo.list(c.seq - 2, 1))[0]!;
    expect(c.streamCount - previous.streamCount).toBe(13);
    expect(c.prevDigest).toBe(previous.digest);
  });

  it('chains two checkpoints asked for at once by two processes, their windows end to end', async () => {
    await append('race', 20, 5);
    const [a, b] = await Promise.all([new CheckpointRepository(tdb.db).create(null, false), new CheckpointRepository(tdb.db).create(null, false)]);
    const [first, second] = [a!, b!].sort((x, y) => x.seq - y.seq);
    expect(second!.seq).toBe(first!.seq + 1);
    expect(second!.fromXmin).toBe(first!.toXmin);
    expect(second!.prevDigest).toBe(first!.digest);
    // The five legs are in exactly one of the two windows.
    expect(first!.headCount + second!.headCount).toBe(5);
    const repo = new CheckpointRepository(tdb.db);
    for (const c of [first!, second!]) expect(headsSha256(await repo.heads(c.seq))).toBe(c.headsSha256);
  });

  it('takes one periodic checkpoint when two processes time theirs together: the other leaves the window to it', async () => {
    await append('timer', 10, 4);
    const results = await Promise.all([new CheckpointRepository(tdb.db).create(null, true), new CheckpointRepository(tdb.db).create(null, true)]);
    expect(results.filter((r) => r !== null).map((r) => r!.headCount)).toEqual([4]);
  });

  it('keeps the heads under a BRIN index of the checkpoint, without a b-tree entry or a foreign-key check per head', async () => {
    const indexes = async () =>
      (await sql<{ indexdef: string }>`SELECT indexdef FROM pg_indexes WHERE tablename = 'ledger_checkpoint_heads' ORDER BY indexname`.execute(tdb.db)).rows.map((r) => r.indexdef);
    const constraints = async () =>
      (await sql<{ contype: string }>`SELECT contype FROM pg_constraint WHERE conrelid = 'ledger_checkpoint_heads'::regclass AND contype IN ('p', 'f', 'u') ORDER BY contype`.execute(tdb.db)).rows.map((r) => r.contype);
    expect(await indexes()).toEqual([expect.stringContaining('USING brin (seq)')]);
    expect(await constraints()).toEqual([]);
    // Down and up again: the primary key and the foreign key come back, and go again.
    await leanCheckpointHeads.down(tdb.db);
    expect(await constraints()).toEqual(['f', 'p']);
    await leanCheckpointHeads.up(tdb.db);
    expect(await constraints()).toEqual([]);
  });
});
