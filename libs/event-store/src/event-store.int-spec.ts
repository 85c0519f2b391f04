import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEvent, type TranslatedEvent } from '@lib/ledger';
import { createTestDatabase, jambonzRecord, type TestDatabase } from '@lib/testing';
import { EventStoreRepository } from './event-store.repository.js';
import { GroupCommitWriter } from './group-commit-writer.js';
import { verifyStreamChain } from './hash-chain.js';

let tdb: TestDatabase;
let store: EventStoreRepository;

beforeAll(async () => {
  tdb = await createTestDatabase();
  store = new EventStoreRepository(tdb.db);
});
afterAll(async () => tdb.drop());

const record = (legId: string, events?: TranslatedEvent[], body?: string) =>
  jambonzRecord(legId, {
    body,
    signatureTimestamp: new Date(1767225600_000),
    events: events ?? [newEvent('CallRinging', legId, { sipStatus: 180 }, { accountId: 'acc' }), newEvent('CallAnswered', legId, {}, { accountId: 'acc' })],
  });

const chainOf = async (streamName: string) => store.readChainLinks({ streamNames: [streamName] });

describe('EventStoreRepository', () => {
  it('appends a delivery: one receipt, its events on the leg stream, positions and versions in order', async () => {
    const [outcome] = await store.appendBatch([record('leg-a')]);
    expect(outcome).toMatchObject({ duplicate: false, events: ['CallRinging', 'CallAnswered'] });
    const rows = await tdb.db.selectFrom('events').selectAll().where('stream_name', '=', 'callLeg-jambonz:leg-a').orderBy('global_position').execute();
    expect(rows.map((r) => r.stream_version)).toEqual([1, 2]);
    expect(String(rows[1]!.global_position)).toBe(outcome!.position);
    expect(rows[1]!.prev_hash!.equals(rows[0]!.hash)).toBe(true);
    expect(verifyStreamChain(await chainOf('callLeg-jambonz:leg-a'))).toBeNull();
  });

  it('keeps the raw body bytes exactly', async () => {
    const body = '{"b":  1,\n "a": "é\\u0000"}';
    const [o] = await store.appendBatch([record('leg-bytes', undefined, body)]);
    const row = await tdb.db.selectFrom('webhook_receipts').select('body').where('id', '=', o!.receiptId).executeTakeFirstOrThrow();
    expect(row.body.equals(Buffer.from(body))).toBe(true);
  });

  it('answers a repeated delivery as a duplicate of the original, appending nothing', async () => {
    const first = record('leg-dup');
    const [a] = await store.appendBatch([first]);
    const before = await countEvents();
    const [b] = await store.appendBatch([{ ...first, receipt: { ...first.receipt, receivedAt: new Date() } }]);
    expect(b).toEqual({ ...a, duplicate: true });
    expect(await countEvents()).toBe(before);
  });

  it('lets the unique index decide between concurrent copies (separate transactions) and copies in one batch', async () => {
    const copy = record('leg-race');
    const results = await Promise.all(Array.from({ length: 8 }, () => store.appendBatch([copy])));
    const flat = results.flat();
    expect(flat.filter((o) => !o.duplicate)).toHaveLength(1);
    expect(new Set(flat.map((o) => o.receiptId)).size).toBe(1);
    expect(new Set(flat.map((o) => o.position)).size).toBe(1);
    const inBatch = await store.appendBatch([record('leg-batch', undefined, 'same'), record('leg-batch', undefined, 'same')]);
    expect(inBatch.map((o) => o.duplicate)).toEqual([false, true]);
    const n = await tdb.db.selectFrom('events').select((eb) => eb.fn.countAll<string>().as('n')).where('stream_name', '=', 'callLeg-jambonz:leg-batch').executeTakeFirstOrThrow();
    expect(Number(n.n)).toBe(2);
  });

  it('hands out gap-free stream versions and an intact chain under concurrent writers on one stream', async () => {
    await Promise.all(Array.from({ length: 20 }, () => store.appendBatch([record('leg-hot'), record('leg-hot-2')])));
    const links = await chainOf('callLeg-jambonz:leg-hot');
    expect(links.map((l) => l.streamVersion)).toEqual(Array.from({ length: 40 }, (_, i) => i + 1));
    expect(verifyStreamChain(links)).toBeNull();
  });

  it('files events without a leg on the provider unrecognized stream', async () => {
    const [o] = await store.appendBatch([record('x', [newEvent('UnrecognizedWebhook', null, { reason: 'body is not valid JSON' })], 'not json')]);
    const row = await tdb.db.selectFrom('events').select(['stream_name', 'type', 'data']).where('global_position', '=', o!.position!).executeTakeFirstOrThrow();
    expect(row).toEqual({ stream_name: 'unrecognized-jambonz', type: 'UnrecognizedWebhook', data: { reason: 'body is not valid JSON' } });
  });

  it('refuses UPDATE, DELETE and TRUNCATE of events and receipts (trigger)', async () => {
    await store.appendBatch([record('leg-immutable')]);
    for (const statement of [
      sql`UPDATE events SET type = 'CallCompleted' WHERE stream_name = 'callLeg-jambonz:leg-immutable'`,
      sql`DELETE FROM events WHERE stream_name = 'callLeg-jambonz:leg-immutable'`,
      sql`TRUNCATE events CASCADE`,
      sql`UPDATE webhook_receipts SET body = '\\x00'::bytea`,
      sql`DELETE FROM webhook_receipts`,
      sql`TRUNCATE webhook_receipts CASCADE`,
    ]) {
      await expect(statement.execute(tdb.db)).rejects.toThrow(/append-only/);
    }
    expect(await countEvents()).toBeGreaterThan(0);
  });

  it('shows tampering by someone who bypasses the trigger: the first broken link is reported', async () => {
    await store.appendBatch([record('leg-tamper'), record('leg-tamper'), record('leg-tamper')]);
    const links = await chainOf('callLeg-jambonz:leg-tamper');
    const victim = links[3]!;
    await sql`ALTER TABLE events DISABLE TRIGGER USER`.execute(tdb.db);
    await sql`UPDATE events SET data = '{"sipStatus": 200}' WHERE global_position = ${victim.position}`.execute(tdb.db);
    await sql`ALTER TABLE events ENABLE TRIGGER USER`.execute(tdb.db);
    expect(verifyStreamChain(await chainOf('callLeg-jambonz:leg-tamper'))).toEqual({
      streamName: 'callLeg-jambonz:leg-tamper',
      position: victim.position,
      streamVersion: 4,
      reason: expect.stringContaining('does not match its hash'),
    });
  });

  it('shows an edited raw body through the chain', async () => {
    await store.appendBatch([record('leg-body')]);
    const [first] = await chainOf('callLeg-jambonz:leg-body');
    await sql`ALTER TABLE webhook_receipts DISABLE TRIGGER USER`.execute(tdb.db);
    await sql`UPDATE webhook_receipts SET body = ${Buffer.from('{"forged":true}')} WHERE id = ${first!.receiptId}`.execute(tdb.db);
    await sql`ALTER TABLE webhook_receipts ENABLE TRIGGER USER`.execute(tdb.db);
    expect(verifyStreamChain(await chainOf('callLeg-jambonz:leg-body'))).toMatchObject({ position: first!.position, reason: expect.stringContaining('raw webhook body') });
  });

  it('shows a deleted event as a version gap', async () => {
    await store.appendBatch([record('leg-gap'), record('leg-gap')]);
    const links = await chainOf('callLeg-jambonz:leg-gap');
    await sql`ALTER TABLE events DISABLE TRIGGER USER`.execute(tdb.db);
    await sql`DELETE FROM events WHERE global_position = ${links[1]!.position}`.execute(tdb.db);
    await sql`ALTER TABLE events ENABLE TRIGGER USER`.execute(tdb.db);
    expect(verifyStreamChain(await chainOf('callLeg-jambonz:leg-gap'))).toMatchObject({ streamVersion: 3, reason: expect.stringContaining('missing') });
  });
});

describe('GroupCommitWriter', () => {
  it('batches concurrent submissions into few transactions and answers each with its own outcome', async () => {
    const writer = new GroupCommitWriter(store, { batchMax: 100, queueMax: 1000, concurrency: 1 });
    const records = Array.from({ length: 200 }, (_, i) => record(`gc-${i}`));
    const outcomes = await Promise.all(records.map((r) => writer.submit(r)));
    expect(outcomes.every((o) => !o.duplicate && o.position !== null)).toBe(true);
    expect(new Set(outcomes.map((o) => o.receiptId)).size).toBe(200);
    expect(writer.stats.batches).toBeLessThan(20);
    const committed = await tdb.db.selectFrom('webhook_receipts').select('id').where('id', 'in', outcomes.map((o) => o.receiptId)).execute();
    expect(committed).toHaveLength(200);
  });

  it('refuses at once when the queue is full', async () => {
    const writer = new GroupCommitWriter(store, { batchMax: 1, queueMax: 2, concurrency: 1 });
    const settled = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => writer.submit(record(`full-${i}`))));
    const refused = settled.filter((s) => s.status === 'rejected');
    expect(refused.length).toBeGreaterThan(0);
    expect((refused[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'SERVICE.UNAVAILABLE', retryAfterSec: 1 });
  });

  it('isolates a record whose events cannot be stored and keeps it as unrecognized', async () => {
    const writer = new GroupCommitWriter(store, { batchMax: 50, queueMax: 100, concurrency: 1 });
    // A leg id too long for the stream index (incompressible, past PostgreSQL's btree row limit: 54000) is a
    // data error the batch cannot survive; the writer must not lose the neighbours, nor the poison's raw request.
    // (NUL, NaN and a merely long id are no longer poison: the store makes them storable.)
    const poison = record('poison', [newEvent('CallRinging', 'poison', { sipStatus: 180 }), newEvent('CallAnswered', 'poison', { sipStatus: Number.NaN })]);
    poison.events.push({ ...poison.events[0]!, legId: randomBytes(10_000).toString('base64') });
    const good = Array.from({ length: 5 }, (_, i) => record(`neighbour-${i}`));
    const outcomes = await Promise.all([...good, poison].map((r) => writer.submit(r)));
    expect(outcomes.every((o) => o.position !== null)).toBe(true);
    const eventsOf = async (receiptId: string) =>
      (await tdb.db.selectFrom('events').select(['stream_name', 'type', 'data']).where('receipt_id', '=', receiptId).orderBy('global_position').execute());
    // Each neighbour is stored with its own translated events, untouched by the poison in its batch.
    for (const [i, o] of outcomes.slice(0, good.length).entries()) {
      expect((await eventsOf(o.receiptId)).map((e) => [e.stream_name, e.type])).toEqual([
        [`callLeg-jambonz:neighbour-${i}`, 'CallRinging'],
        [`callLeg-jambonz:neighbour-${i}`, 'CallAnswered'],
      ]);
    }
    // The poison's raw delivery is kept byte for byte, filed as one UnrecognizedWebhook saying why, and none of
    // its translated events reached a leg stream.
    const kept = outcomes[good.length]!;
    expect(await eventsOf(kept.receiptId)).toEqual([
      { stream_name: 'unrecognized-jambonz', type: 'UnrecognizedWebhook', data: { reason: expect.stringContaining('translated events could not be stored') } },
    ]);
    const receipt = await tdb.db.selectFrom('webhook_receipts').select('body').where('id', '=', kept.receiptId).executeTakeFirstOrThrow();
    expect(Buffer.from(receipt.body).equals(poison.receipt.body)).toBe(true);
    const onLeg = await tdb.db.selectFrom('events').select('event_id').where('stream_name', '=', 'callLeg-jambonz:poison').execute();
    expect(onLeg).toEqual([]);
  });
});

const countEvents = async () => Number((await tdb.db.selectFrom('events').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()).n);

describe('GroupCommitWriter and a cancelled statement', () => {
  it('stores a delivery whose statement was cancelled while it waited for a lock with its real events, not as unrecognized', async () => {
    await store.appendBatch([record('leg-locked')]);
    const writer = new GroupCommitWriter(store, { batchMax: 10, queueMax: 10, concurrency: 1, retryBaseMs: 5 });
    const outcome = await tdb.db.connection().execute(async (holder) => {
      await sql`BEGIN`.execute(holder);
      await sql`SELECT 1 FROM streams WHERE stream_name = 'callLeg-jambonz:leg-locked' FOR UPDATE`.execute(holder);
      const pending = writer.submit(record('leg-locked'));
      // The writer's backend, blocked on the head row this transaction holds.
      let blocked: { pid: number; started: Date } | undefined;
      while (blocked === undefined) {
        const r = await sql<{ pid: number; started: Date }>`
          SELECT pid, query_start AS started FROM pg_stat_activity
          WHERE wait_event_type = 'Lock' AND query LIKE '%ledger_append%' AND datname = current_database()`.execute(tdb.db);
        blocked = r.rows[0];
        if (blocked === undefined) await new Promise((r) => setTimeout(r, 5));
      }
      await sql`SELECT pg_cancel_backend(${blocked.pid}::int)`.execute(tdb.db);
      // Released only once the cancelled statement has ended (a retry may already wait on the row again).
      for (;;) {
        const r = await sql<{ waiting: boolean }>`
          SELECT wait_event_type = 'Lock' AND query_start = ${blocked.started} AS waiting FROM pg_stat_activity WHERE pid = ${blocked.pid}::int`.execute(tdb.db);
        if (!r.rows[0]?.waiting) break;
        await new Promise((r) => setTimeout(r, 5));
      }
      await sql`COMMIT`.execute(holder);
      return pending;
    });
    expect(outcome).toMatchObject({ duplicate: false, events: ['CallRinging', 'CallAnswered'] });
    const types = await tdb.db.selectFrom('events').select('type').where('receipt_id', '=', outcome.receiptId).execute();
    expect(types.map((t) => t.type)).toEqual(['CallRinging', 'CallAnswered']);
  });
});
