import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEvent } from '@lib/ledger';
import { createTestDatabase, type TestDatabase } from '@lib/testing';
import { canonicalJson, storableText } from './canonical-json.js';
import { EventStoreRepository } from './event-store.repository.js';
import { verifyStreamChain } from './hash-chain.js';

/**
 * What PostgreSQL does with the characters it cannot hold, checked on the real server: these facts decide how
 * every hashed text is normalised before it is stored (canonical-json.ts).
 */
let tdb: TestDatabase;
beforeAll(async () => {
  tdb = await createTestDatabase();
});
afterAll(async () => tdb.drop());

const codeOf = async (p: Promise<unknown>) => p.then(() => 'ok', (e: { code?: string }) => e.code);

describe('PostgreSQL and the characters it cannot hold', () => {
  it('jsonb refuses an escaped NUL and an escaped lone surrogate', async () => {
    expect(await codeOf(sql`SELECT ${'{"a":"x\\u0000y"}'}::jsonb`.execute(tdb.db))).toBe('22P05');
    expect(await codeOf(sql`SELECT ${'{"a":"x\\ud800y"}'}::jsonb`.execute(tdb.db))).toMatch(/^22/);
    // JSON.stringify writes a lone surrogate as that escape, so unnormalised event data would be refused.
    expect(JSON.stringify('\ud800')).toBe('"\\ud800"');
  });

  it('text refuses NUL, and a lone surrogate sent by node-postgres arrives as U+FFFD', async () => {
    expect(await codeOf(sql`SELECT ${'x\u0000y'}::text`.execute(tdb.db))).toBe('22021');
    const r = await sql<{ t: string }>`SELECT ${'CA\ud800x'}::text AS t`.execute(tdb.db);
    expect(r.rows[0]!.t).toBe('CA\uFFFDx');
  });

  it('the normalised forms are stored exactly as they are hashed', async () => {
    const text = 'a\ud800b\u0000c\udc00\u{1F600}';
    const r = await sql<{ t: string; j: unknown }>`SELECT ${storableText(text)}::text AS t, ${canonicalJson({ k: text })}::jsonb AS j`.execute(tdb.db);
    expect(r.rows[0]!.t).toBe(storableText(text));
    expect(canonicalJson(r.rows[0]!.j)).toBe(canonicalJson({ k: text }));
  });
});

describe('a lone surrogate or a NUL in a call id', () => {
  it('is stored in the stream name as U+FFFD and the chain verifies', async () => {
    const store = new EventStoreRepository(tdb.db);
    for (const legId of ['CA\ud800x', 'CA\u0000y']) {
      const body = Buffer.from(JSON.stringify({ legId }));
      await store.appendBatch([
        {
          receipt: {
            provider: 'freeclimb', body, bodySha256: createHash('sha256').update(body).digest(), contentType: 'application/json', path: 'status\ud800',
            query: '', headers: { 'user-agent': 'x\ud800' }, remoteAddr: '127.0.0.1', receivedAt: new Date(), source: 'live', signatureStatus: 'verified', signatureTimestamp: null,
          },
          events: [newEvent('CallRinging', legId, { sipStatus: 180 })],
        },
      ]);
      const name = `callLeg-freeclimb:${storableText(legId)}`;
      const links = await store.readChainLinks({ streamNames: [name] });
      expect(links).toHaveLength(1);
      expect(verifyStreamChain(links, (await store.readStreamHeads([name])).get(name))).toBeNull();
    }
  });
});
