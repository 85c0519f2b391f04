import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEvent } from '@lib/ledger';
import { createTestDatabase, type TestDatabase } from '@lib/testing';
import * as tamperEvidence from '../../../migrations/20261201000200_tamper_evidence.js';
import * as retranslation from '../../../migrations/20261202000100_retranslation.js';
import * as getDeliveries from '../../../migrations/20261202000800_get_deliveries.js';
import * as partitionedStore from '../../../migrations/20261203000200_partitioned_store.js';
import * as accountKey from '../../../migrations/20261204000100_account_key.js';
import * as leanAppendCall from '../../../migrations/20261205000100_lean_append_call.js';
import { canonicalJson } from './canonical-json.js';
import { EventStoreRepository } from './event-store.repository.js';
import { CHAIN_VERSION, chainContentOfText, verifyStreamChain } from './hash-chain.js';

/**
 * A store in the field holds events hashed under rule 1. This writes some with the function as it was before the
 * migration (the migration's `down` restores it), applies the migration, and checks that the old events still
 * verify and that new events chain on after them under rule 2.
 */
let tdb: TestDatabase;
beforeAll(async () => {
  tdb = await createTestDatabase();
});
afterAll(async () => tdb.drop());

describe('chain versions across the issue-10 migration', () => {
  it('keeps verifying events written before it, and chains new ones after them', async () => {
    // Later migrations first, newest first: the GET-deliveries one replaces ledger_append again, the
    // re-translation one adds a second signature of it; the partitioned store edits it and moves the rows; the
    // account key adds an argument to it and a column to the rows.
    await leanAppendCall.down(tdb.db);
    await accountKey.down(tdb.db);
    await partitionedStore.down(tdb.db);
    await getDeliveries.down(tdb.db);
    await retranslation.down(tdb.db);
    await tamperEvidence.down(tdb.db);
    const stream = 'callLeg-jambonz:leg-old';
    const body = Buffer.from('{"old":true}');
    const sha = createHash('sha256').update(body).digest();
    const receivedAt = '2026-01-05T14:02:10.118Z';
    const events = [
      { id: '0f6c2b1e-1111-8222-9333-444455556661', type: 'CallRinging', data: { sipStatus: 180 } },
      { id: '0f6c2b1e-1111-8222-9333-444455556662', type: 'CallAnswered', data: {} },
    ].map((e) => {
      const dataText = canonicalJson(e.data);
      const metadataText = canonicalJson({ provider: 'jambonz', legId: 'leg-old' });
      const content = chainContentOfText({ chainVersion: 1, eventId: e.id, streamName: stream, type: e.type, schemaVersion: 1, dataText, metadataText, bodySha256: sha.toString('hex'), receivedAt, occurredAt: null, receiptText: null });
      return { ...e, dataText, metadataText, content };
    });
    await sql`
      SELECT * FROM ledger_append(
        ${['jambonz']}::text[], ${[sha]}::bytea[], ${[body]}::bytea[], ${['application/json']}::text[], ${['status']}::text[], ${['']}::text[],
        ${['{}']}::text[], ${['127.0.0.1']}::text[], ${[receivedAt]}::timestamptz[], ${['live']}::text[], ${['verified']}::text[], ${[null]}::timestamptz[],
        ${[1, 1]}::int[], ${[stream, stream]}::text[], ${events.map((e) => e.id)}::uuid[], ${events.map((e) => e.type)}::text[],
        ${events.map((e) => e.dataText)}::text[], ${events.map((e) => e.metadataText)}::text[], ${[null, null]}::timestamptz[], ${events.map((e) => e.content)}::text[])`.execute(tdb.db);
    await tamperEvidence.up(tdb.db);
    await retranslation.up(tdb.db);
    await getDeliveries.up(tdb.db);
    await partitionedStore.up(tdb.db);
    await accountKey.up(tdb.db);

    const store = new EventStoreRepository(tdb.db);
    const old = await store.readChainLinks({ streamNames: [stream] });
    expect(old.map((l) => l.chainVersion)).toEqual([1, 1]);
    expect(verifyStreamChain(old, (await store.readStreamHeads([stream])).get(stream))).toBeNull();

    const next = Buffer.from('{"new":true}');
    await store.appendBatch([
      {
        receipt: {
          provider: 'jambonz', body: next, bodySha256: createHash('sha256').update(next).digest(), contentType: 'application/json', path: 'status', query: '',
          headers: { 'jambonz-signature': 't=1,v1=ab' }, remoteAddr: '127.0.0.1', receivedAt: new Date(), source: 'live', signatureStatus: 'verified', signatureTimestamp: null,
        },
        events: [newEvent('CallCompleted', 'leg-old', { outcome: 'completed', durationSec: 3 })],
      },
    ]);
    const all = await store.readChainLinks({ streamNames: [stream] });
    expect(all.map((l) => l.chainVersion)).toEqual([1, 1, CHAIN_VERSION]);
    expect(verifyStreamChain(all, (await store.readStreamHeads([stream])).get(stream))).toBeNull();
  });
});
