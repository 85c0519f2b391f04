import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { EventStoreRepository, type WebhookRecord } from '@lib/event-store';
import type { LedgerEvent, TranslatedEvent } from '@lib/ledger';
import { createTestDatabase, type TestDatabase } from '@lib/testing';
import { callScenarioArb } from '../../ledger/src/testing/call-scenarios.js';
import { callLegsProjection } from './call-legs.projection.js';
import { Projector } from './projector.js';

const toRecord = (e: LedgerEvent): WebhookRecord => {
  const body = Buffer.from(JSON.stringify({ id: e.eventId, type: e.type, leg: e.legId, data: e.data }));
  const { type, legId, accountId, parentLegId, occurredAt, providerSeq, party, data } = e;
  return {
    receipt: {
      provider: e.provider, body, bodySha256: createHash('sha256').update(body).digest(), contentType: 'application/json', path: '', query: '',
      headers: {}, remoteAddr: null, receivedAt: new Date(e.receivedAt), source: 'import', signatureStatus: 'not-checked', signatureTimestamp: null,
    },
    events: [{ type, legId, accountId, parentLegId, occurredAt, providerSeq, party, data } as TranslatedEvent],
  };
};

/** Tables of generation g with their persistence ('p' logged, 'u' unlogged) and index definitions, g spelled N. */
const generationShape = async (tdb: TestDatabase, g: number) => {
  const tables = await sql<{ relname: string; relpersistence: string }>`
    SELECT relname, relpersistence FROM pg_class WHERE relkind = 'r' AND relname LIKE ${`%\\_g${g}`} ORDER BY relname`.execute(tdb.db);
  const indexes = await sql<{ indexdef: string }>`
    SELECT indexdef FROM pg_indexes WHERE tablename LIKE ${`%\\_g${g}`} ORDER BY indexname`.execute(tdb.db);
  const spell = (s: string) => s.replaceAll(`_g${g}`, '_gN');
  return {
    tables: tables.rows.map((t) => `${spell(t.relname)}:${t.relpersistence}`),
    indexes: indexes.rows.map((i) => spell(i.indexdef)),
  };
};

describe('call_legs bulk rebuild, storage', () => {
  it('publishes a generation that is logged and has every index a live generation has, though it was loaded unlogged without most of them', async () => {
    const tdb = await createTestDatabase(4);
    try {
      const projector = new Projector(tdb.db, [callLegsProjection]);
      await projector.init();
      const events = fc.sample(callScenarioArb, { numRuns: 8, seed: 5 }).flatMap((s) => s.events);
      await new EventStoreRepository(tdb.db).appendBatch(events.map(toRecord));
      await projector.runUntilCaughtUp();
      const live = await generationShape(tdb, 1);
      expect(live.tables.length).toBeGreaterThanOrEqual(5);
      expect(live.tables.every((t) => t.endsWith(':p'))).toBe(true);
      expect(live.indexes.length).toBeGreaterThan(live.tables.length);

      await projector.rebuild('call_legs');
      expect(await generationShape(tdb, 2)).toEqual(live);
      expect(await generationShape(tdb, 1)).toEqual({ tables: [], indexes: [] });
      const legs = await sql<{ n: number }>`SELECT count(*)::int AS n FROM call_legs`.execute(tdb.db);
      expect(legs.rows[0]!.n).toBeGreaterThan(0);
    } finally {
      await tdb.drop();
    }
  });
});
