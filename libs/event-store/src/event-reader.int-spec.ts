import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEvent } from '@lib/ledger';
import { createTestDatabase, jambonzRecord, type TestDatabase } from '@lib/testing';
import { readAfter, START } from './event-reader.js';
import { EventStoreRepository } from './event-store.repository.js';

let tdb: TestDatabase;
let store: EventStoreRepository;

beforeAll(async () => {
  tdb = await createTestDatabase();
  store = new EventStoreRepository(tdb.db);
});
afterAll(async () => tdb.drop());

/** A copy of a stored event under another type, schema version and data (only a write around ledger_append can). */
const storeAround = async (like: string, type: string, schemaVersion: number, data: unknown) => {
  await sql`
    INSERT INTO events (event_id, stream_name, stream_version, type, schema_version, data, metadata, receipt_id, received_at, hash, account_key)
    SELECT gen_random_uuid(), stream_name, stream_version + 100 + ${schemaVersion}::int, ${type}, ${schemaVersion}::smallint, ${JSON.stringify(data)}::jsonb,
      metadata, receipt_id, received_at, '\\x00', account_key
    FROM events WHERE global_position = ${like}::bigint`.execute(tdb.db);
};

describe('the store read through the event schemas', () => {
  it('stores each event with its type schema version and reads its data back through parseEvent', async () => {
    const [o] = await store.appendBatch([jambonzRecord('read-1', { events: [newEvent('CallCompleted', 'read-1', { outcome: 'busy', sipStatus: 486 })] })]);
    const row = await tdb.db.selectFrom('events').select(['schema_version', 'type']).where('global_position', '=', o!.position!).executeTakeFirstOrThrow();
    expect(row).toEqual({ schema_version: 1, type: 'CallCompleted' });
    const { events } = await readAfter(tdb.db, START, 100);
    expect(events.find((e) => e.position === o!.position)).toMatchObject({ type: 'CallCompleted', data: { outcome: 'busy', sipStatus: 486 }, legId: 'read-1' });
  });

  it('reads an event of a version or type it does not know as unrecognized, never as the data it cannot read', async () => {
    const [o] = await store.appendBatch([jambonzRecord('read-2', { events: [newEvent('CallInitiated', 'read-2', { direction: 'inbound', from: '+1', to: '+2' })] })]);
    await storeAround(o!.position!, 'CallCompleted', 2, { outcome: 'completed', talk: { seconds: 30 } });
    await storeAround(o!.position!, 'CallTeleported', 1, { to: 'mars' });
    const { events } = await readAfter(tdb.db, START, 100);
    const mine = events.filter((e) => e.legId === 'read-2');
    expect(mine.map((e) => [e.type, e.data])).toEqual([
      ['CallInitiated', { direction: 'inbound', from: '+1', to: '+2' }],
      ['UnrecognizedWebhook', { reason: 'CallCompleted version 2 is not readable here (current: 1)' }],
      ['UnrecognizedWebhook', { reason: 'event type CallTeleported is unknown to this version' }],
    ]);
  });

  it('leaves such events out of the stream reads of the query routes', async () => {
    const [o] = await store.appendBatch([jambonzRecord('read-3', { events: [newEvent('DialCompleted', 'read-3', { outcome: 'busy', childLegId: 'c' })] })]);
    await storeAround(o!.position!, 'DialCompleted', 5, { outcome: 'completed' });
    const events = await store.readStreamEvents([{ streamNames: ['callLeg-jambonz:read-3'], types: ['DialCompleted'] }]);
    expect(events.map((e) => [e.type, e.data])).toEqual([['DialCompleted', { outcome: 'busy', childLegId: 'c' }]]);
  });
});
