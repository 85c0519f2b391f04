import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, poolOf, type DatabaseHandle } from '@lib/db';
import { ProviderRegistry } from '@lib/providers';
import { createTestDatabase, legacyAppendShim, type TestDatabase } from '@lib/testing';
import { buildAnswerRecord } from '../../../apps/ledger/src/tee/answer-record.factory.js';
import { buildWebhookRecord } from '../../../apps/ledger/src/webhooks/webhook-record.factory.js';
import * as accountKey from '../../../migrations/20261204000100_account_key.js';
import * as leanAppendCall from '../../../migrations/20261205000100_lean_append_call.js';
import { BulkAppendRepository } from './bulk-append.repository.js';
import { EventStoreRepository } from './event-store.repository.js';
import { verifyStreamChain } from './hash-chain.js';
import { RetranslationRepository } from './retranslation.repository.js';
import { StagedChunk } from './staged-rows.js';
import type { WebhookRecord } from './webhook-record.js';

/**
 * `account_key` on the store (migration 20261204000100, docs/scaling.md): every writer fills it with the same key
 * for the same delivery (live append, bulk import, a backfill of a store written before the column), an event
 * carries its stream head's, and the dedupe stays global.
 */
const providers = new ProviderRegistry({ freeclimb: [], jambonz: [], twilio: [], restcomm: [] }, undefined);
const JSON_TYPE = 'application/json';
const FORM_TYPE = 'application/x-www-form-urlencoded';

const delivery = (provider: 'freeclimb' | 'jambonz' | 'twilio' | 'restcomm', body: string, receivedAt = '2026-11-20T10:00:00Z', source: 'live' | 'import' = 'live'): WebhookRecord =>
  buildWebhookRecord(
    {
      provider,
      rawBody: Buffer.from(body),
      contentType: provider === 'twilio' || provider === 'restcomm' ? FORM_TYPE : JSON_TYPE,
      path: 'status',
      query: '',
      headers: {},
      remoteAddr: null,
      receivedAt: new Date(receivedAt),
      signature: { status: 'not-checked', timestamp: null },
      source,
    },
    providers,
  );

const form = (p: Record<string, string>) => new URLSearchParams(p).toString();
/** One delivery of each kind, with the key it must be stored under. */
const CASES = [
  {
    name: 'FreeClimb accountId',
    key: 'freeclimb:ACfc1',
    record: () => delivery('freeclimb', JSON.stringify({ accountId: 'ACfc1', callId: 'CAfc-1', callStatus: 'ringing', direction: 'inbound', from: '+15550001', to: '+15550002', parentCallId: null, requestType: 'inboundCall' })),
  },
  {
    name: 'Twilio AccountSid',
    key: 'twilio:ACtw1',
    record: () => delivery('twilio', form({ AccountSid: 'ACtw1', ApiVersion: '2010-04-01', CallSid: 'CAtw-1', CallStatus: 'ringing', Direction: 'inbound', From: '+15550001', To: '+15550002' })),
  },
  {
    name: 'Restcomm AccountSid',
    key: 'restcomm:ACrc1',
    record: () => delivery('restcomm', form({ CallSid: 'CArc-1', AccountSid: 'ACrc1', CallStatus: 'ringing', Direction: 'inbound', From: '+15550001', To: '+15550002' })),
  },
  {
    name: 'jambonz account_sid',
    key: 'jambonz:jb-acct-1',
    record: () => delivery('jambonz', JSON.stringify({ call_sid: 'jb-1', call_status: 'ringing', direction: 'inbound', from: '+15550001', to: '+15550002', account_sid: 'jb-acct-1', sip_status: 180 })),
  },
  {
    name: 'a body that names no account',
    key: 'jambonz:',
    record: () => delivery('jambonz', JSON.stringify({ call_sid: 'jb-2', call_status: 'ringing', direction: 'inbound', from: '+15550001', to: '+15550002', sip_status: 180 })),
  },
  {
    name: 'an unrecognized body',
    key: 'freeclimb:',
    record: () => delivery('freeclimb', 'garbage that is not json'),
  },
] as const;

interface Stored {
  receipts: Record<string, string>;
  heads: Record<string, string>;
  events: Record<string, string>;
}
/** Every key the store holds: receipts by body sha256, heads by stream, events by event id (all comparable across stores). */
const storedKeys = async (db: TestDatabase): Promise<Stored> => {
  const receipts = await sql<{ sha: string; key: string; keys_key: string }>`
    SELECT encode(w.body_sha256, 'hex') AS sha, w.account_key AS key, k.account_key AS keys_key
    FROM webhook_receipts w JOIN webhook_receipt_keys k ON k.receipt_id = w.id`.execute(db.db);
  for (const r of receipts.rows) expect(r.keys_key).toBe(r.key);
  const heads = await sql<{ stream_name: string; account_key: string }>`SELECT stream_name, account_key FROM streams`.execute(db.db);
  const events = await sql<{ event_id: string; account_key: string; head_key: string }>`
    SELECT e.event_id, e.account_key, s.account_key AS head_key FROM events e JOIN streams s ON s.stream_name = e.stream_name`.execute(db.db);
  // An event carries its stream head's key, whichever delivery it came with.
  for (const e of events.rows) expect(e.account_key).toBe(e.head_key);
  return {
    receipts: Object.fromEntries(receipts.rows.map((r) => [r.sha, r.key])),
    heads: Object.fromEntries(heads.rows.map((r) => [r.stream_name, r.account_key])),
    events: Object.fromEntries(events.rows.map((r) => [r.event_id, r.account_key])),
  };
};

/** Each case's receipt, and the heads its events went to, hold its key. */
const expectCaseKeys = (stored: Stored) => {
  for (const c of CASES) {
    const r = c.record();
    expect({ case: c.name, key: stored.receipts[r.receipt.bodySha256.toString('hex')] }).toEqual({ case: c.name, key: c.key });
  }
  expect(stored.heads).toMatchObject({
    'callLeg-freeclimb:CAfc-1': 'freeclimb:ACfc1',
    'callLeg-twilio:CAtw-1': 'twilio:ACtw1',
    'callLeg-restcomm:CArc-1': 'restcomm:ACrc1',
    'callLeg-jambonz:jb-1': 'jambonz:jb-acct-1',
    'callLeg-jambonz:jb-2': 'jambonz:',
    'unrecognized-freeclimb': 'freeclimb:',
  });
};

const chainsHold = async (db: TestDatabase) => {
  const store = new EventStoreRepository(db.db);
  const links = await store.readChainLinks({});
  const names = [...new Set(links.map((l) => l.streamName))];
  const heads = await store.readStreamHeads(names);
  for (const n of names) expect(verifyStreamChain(links.filter((l) => l.streamName === n), heads.get(n))).toBeNull();
};

let live: TestDatabase;
let liveApp: DatabaseHandle;
beforeAll(async () => {
  live = await createTestDatabase();
  liveApp = createDatabase(live.appUrl, 4);
  // As the service appends: the app role, through ledger_append.
  await new EventStoreRepository(liveApp.db).appendBatch(CASES.map((c) => c.record()));
});
afterAll(async () => {
  await liveApp.db.destroy();
  await live.drop();
});

describe('account_key', () => {
  it('is stored by the live append on receipt, dedupe row, events and stream head, one per provider and kind', async () => {
    const stored = await storedKeys(live);
    expectCaseKeys(stored);
    await chainsHold(live);
  });

  it('is stored alike by the bulk import', async () => {
    const db = await createTestDatabase();
    const app = createDatabase(db.appUrl, 2);
    try {
      const chunk = new StagedChunk<number>();
      for (const c of CASES) chunk.add(c.record(), 0);
      expect(await new BulkAppendRepository(poolOf(app.db)!).appendChunk(chunk)).toMatchObject({ imported: CASES.length, duplicates: 0 });
      const stored = await storedKeys(db);
      expectCaseKeys(stored);
      expect(stored).toEqual(await storedKeys(live));
      await chainsHold(db);
    } finally {
      await app.db.destroy();
      await db.drop();
    }
  });

  it('is backfilled on a store written before the migration with the keys the live path gives', async () => {
    const db = await createTestDatabase();
    try {
      await leanAppendCall.down(db.db);
      await accountKey.down(db.db);
      const columns = await sql<{ n: number }>`SELECT count(*)::int AS n FROM information_schema.columns WHERE column_name = 'account_key' AND table_schema = current_schema()`.execute(db.db);
      expect(columns.rows[0]!.n).toBe(0);
      await legacyAppendShim(db.db, 'create');
      await new EventStoreRepository(db.db).appendBatch(CASES.map((c) => c.record()));
      await legacyAppendShim(db.db, 'drop');
      await accountKey.up(db.db);
      expect(await storedKeys(db)).toEqual(await storedKeys(live));
      await chainsHold(db);
      // And the migrated store goes on like a new one: a later delivery of a leg keeps the leg's key.
      const [o] = await new EventStoreRepository(db.db).appendBatch([
        delivery('twilio', form({ CallSid: 'CAtw-1', AccountSid: 'ACtw1', CallStatus: 'in-progress', Direction: 'inbound', From: '+15550001', To: '+15550002' })),
      ]);
      expect(o!.duplicate).toBe(false);
      const keys = await sql<{ account_key: string }>`SELECT DISTINCT account_key FROM events WHERE stream_name = 'callLeg-twilio:CAtw-1'`.execute(db.db);
      expect(keys.rows).toEqual([{ account_key: 'twilio:ACtw1' }]);
    } finally {
      await db.drop();
    }
  });

  it('is backfilled where retention took the rows it would be read from: dedupe rows <provider>:, heads from what is left', async () => {
    const db = await createTestDatabase();
    try {
      await leanAppendCall.down(db.db);
      await accountKey.down(db.db);
      await legacyAppendShim(db.db, 'create');
      const jb = (leg: string, status: string, at: string) =>
        delivery('jambonz', JSON.stringify({ call_sid: leg, call_status: status, direction: 'inbound', account_sid: 'jb-old', sip_status: 180 }), at);
      const [gone] = await new EventStoreRepository(db.db).appendBatch([jb('jb-kept', 'ringing', '2025-01-10T00:00:00Z'), jb('jb-gone', 'ringing', '2025-01-11T00:00:00Z')]);
      await new EventStoreRepository(db.db).appendBatch([jb('jb-kept', 'in-progress', '2025-02-10T00:00:00Z')]);
      await legacyAppendShim(db.db, 'drop');
      await sql`SELECT * FROM ledger_detach_month('2025-01-01')`.execute(db.db);
      await sql`SELECT ledger_drop_month('2025-01-01', '\\x00', 'test')`.execute(db.db);
      await accountKey.up(db.db);
      const keyRow = await sql<{ account_key: string }>`SELECT account_key FROM webhook_receipt_keys WHERE receipt_id = ${gone!.receiptId}::bigint`.execute(db.db);
      expect(keyRow.rows).toEqual([{ account_key: 'jambonz:' }]);
      const heads = await sql<{ stream_name: string; account_key: string }>`
        SELECT stream_name, account_key FROM streams WHERE stream_name LIKE 'callLeg-jambonz:jb-%' ORDER BY 1`.execute(db.db);
      expect(heads.rows).toEqual([
        { stream_name: 'callLeg-jambonz:jb-gone', account_key: 'jambonz:' },
        { stream_name: 'callLeg-jambonz:jb-kept', account_key: 'jambonz:jb-old' },
      ]);
      await storedKeys(db);
    } finally {
      await db.drop();
    }
  });

  it('of a stream is the one it was made with: a later delivery naming another account keeps its own on its receipt only', async () => {
    const record = delivery('jambonz', JSON.stringify({ call_sid: 'jb-1', call_status: 'in-progress', direction: 'inbound', from: '+15550001', to: '+15550002', account_sid: 'jb-acct-2', sip_status: 200 }));
    const [o] = await new EventStoreRepository(liveApp.db).appendBatch([record]);
    const receipt = await sql<{ account_key: string }>`SELECT account_key FROM webhook_receipts WHERE id = ${o!.receiptId}::bigint`.execute(live.db);
    expect(receipt.rows[0]!.account_key).toBe('jambonz:jb-acct-2');
    const events = await sql<{ account_key: string }>`SELECT account_key FROM events WHERE receipt_id = ${o!.receiptId}::bigint`.execute(live.db);
    expect(events.rows.length).toBeGreaterThan(0);
    for (const e of events.rows) expect(e.account_key).toBe('jambonz:jb-acct-1');
  });

  it('of a new head in one batch is its first delivery\'s', async () => {
    const mk = (account: string, status: string) =>
      delivery('jambonz', JSON.stringify({ call_sid: 'jb-batch', call_status: status, direction: 'inbound', from: '+15550001', to: '+15550002', account_sid: account, sip_status: 180 }));
    await new EventStoreRepository(liveApp.db).appendBatch([mk('first', 'ringing'), mk('second', 'in-progress')]);
    const head = await sql<{ account_key: string }>`SELECT account_key FROM streams WHERE stream_name = 'callLeg-jambonz:jb-batch'`.execute(live.db);
    expect(head.rows[0]!.account_key).toBe('jambonz:first');
    await storedKeys(live);
  });

  it('leaves the dedupe global: across months, across the keys two bodies that sign alike parse to, and under concurrency', async () => {
    const store = new EventStoreRepository(liveApp.db);
    // The same bytes months later (another partition): a duplicate.
    const again = CASES[0].record();
    const [later] = await store.appendBatch([{ ...again, receipt: { ...again.receipt, receivedAt: new Date('2026-02-03T00:00:00Z') } }]);
    expect(later!.duplicate).toBe(true);
    // A Twilio form variant that signs as the stored one (ApiVersion merged into AccountSid's value: the signed string
    // is the same): it parses to the same leg under another AccountSid, so a dedupe by (account_key, provider, dedupe
    // key) would have stored it again, events and all.
    const variant = delivery('twilio', 'AccountSid=ACtw1ApiVersion2010-04-01&CallSid=CAtw-1&CallStatus=ringing&Direction=inbound&From=%2B15550001&To=%2B15550002');
    expect(variant.events.map((e) => [e.legId, e.accountId])).toContainEqual(['CAtw-1', 'ACtw1ApiVersion2010-04-01']);
    const [dup] = await store.appendBatch([variant]);
    expect(dup!.duplicate).toBe(true);
    // Two writers with the same new delivery at once: one stores it.
    const fresh = delivery('restcomm', form({ CallSid: 'CArc-race', AccountSid: 'ACrc9', CallStatus: 'ringing', Direction: 'inbound', From: '+1', To: '+2' }));
    const other = createDatabase(live.appUrl, 1);
    try {
      const outcomes = await Promise.all([store.appendBatch([fresh]), new EventStoreRepository(other.db).appendBatch([fresh])]);
      expect(outcomes.map(([o]) => o!.duplicate).sort()).toEqual([false, true]);
    } finally {
      await other.db.destroy();
    }
    const n = await sql<{ n: number }>`SELECT count(*)::int AS n FROM webhook_receipt_keys WHERE account_key = 'restcomm:ACrc9'`.execute(live.db);
    expect(n.rows[0]!.n).toBe(1);
  });

  it('is carried by re-translations: the translation row has its receipt\'s, the events their head\'s', async () => {
    const repo = new RetranslationRepository(liveApp.db);
    const [d] = await repo.deliveries('restcomm', '0', await repo.lastReceipt('restcomm'), 1);
    const events = providers.get('restcomm').translate(d!.body, { provider: 'restcomm', path: d!.path, query: new URLSearchParams(d!.query), contentType: d!.contentType });
    const appended = await repo.append('restcomm', 99, [{ delivery: d!, events }], { through: d!.receiptId, until: d!.receiptId, done: true });
    expect(appended).toEqual([d!.receiptId]);
    const t = await sql<{ account_key: string }>`SELECT account_key FROM receipt_translations WHERE receipt_id = ${d!.receiptId}::bigint`.execute(live.db);
    expect(t.rows).toEqual([{ account_key: 'restcomm:ACrc1' }]);
    const keys = await sql<{ account_key: string }>`
      SELECT DISTINCT account_key FROM events WHERE receipt_id = ${d!.receiptId}::bigint AND (metadata->>'translation')::int = 99`.execute(live.db);
    expect(keys.rows).toEqual([{ account_key: 'restcomm:ACrc1' }]);
    await storedKeys(live);
    await chainsHold(live);
  });

  it('of a tee answer record is its delivery\'s account, on its receipt and its answers stream', async () => {
    const answered = buildAnswerRecord(
      { provider: 'twilio', receiptId: null, bodySha256: '00', legId: 'CAtw-1', accountId: 'ACtw1', method: 'POST', path: 'voice' },
      { outcome: 'answered', status: 200, headers: { 'content-type': 'text/xml' }, body: Buffer.from('<Response><Hangup/></Response>'), durationMs: 3 },
      new Date('2026-11-20T10:00:01Z'),
    );
    const [o] = await new EventStoreRepository(liveApp.db).appendBatch([answered]);
    const keys = await sql<{ receipt: string; head: string; events: string[] }>`
      SELECT w.account_key AS receipt, (SELECT s.account_key FROM streams s WHERE s.stream_name = 'appAnswers-twilio:CAtw-1') AS head,
        ARRAY(SELECT DISTINCT e.account_key FROM events e WHERE e.receipt_id = w.id) AS events
      FROM webhook_receipts w WHERE w.id = ${o!.receiptId}::bigint`.execute(live.db);
    expect(keys.rows[0]).toEqual({ receipt: 'twilio:ACtw1', head: 'twilio:ACtw1', events: ['twilio:ACtw1'] });
  });

  it('is on the months made after the migration, in their unique version index, and never NULL', async () => {
    const [o] = await new EventStoreRepository(liveApp.db).appendBatch([
      delivery('jambonz', JSON.stringify({ call_sid: 'jb-old-month', call_status: 'ringing', direction: 'inbound', account_sid: 'jb-acct-7', sip_status: 180 }), '2024-03-10T00:00:00Z'),
    ]);
    expect(o!.duplicate).toBe(false);
    const cols = await sql<{ table_name: string; is_nullable: string }>`
      SELECT table_name, is_nullable FROM information_schema.columns
      WHERE column_name = 'account_key' AND table_name IN ('events_p2024m03', 'webhook_receipts_p2024m03') ORDER BY table_name`.execute(live.db);
    expect(cols.rows).toEqual([
      { table_name: 'events_p2024m03', is_nullable: 'NO' },
      { table_name: 'webhook_receipts_p2024m03', is_nullable: 'NO' },
    ]);
    const idx = await sql<{ indexdef: string }>`SELECT indexdef FROM pg_indexes WHERE tablename = 'events_p2024m03' AND indexdef LIKE 'CREATE UNIQUE INDEX%'`.execute(live.db);
    expect(idx.rows.map((r) => r.indexdef.replace(/^.* USING btree /, ''))).toEqual(
      expect.arrayContaining(['(stream_name, stream_version, account_key)', '(global_position, received_at, account_key)']),
    );
    await expect(sql`INSERT INTO streams (stream_name, version) VALUES ('no-key', 0)`.execute(live.db)).rejects.toThrow(/account_key/);
  });
});
