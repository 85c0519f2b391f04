import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { sql } from 'kysely';
import pg from 'pg';
import { describe, expect, it } from 'vitest';
import { EventStoreRepository, type WebhookRecord } from '@lib/event-store';
import { projectCallLeg, receiptVerification, type LedgerEvent, type TranslatedEvent } from '@lib/ledger';
import { createTestDatabase, type TestDatabase } from '@lib/testing';
import { callScenarioArb, legInputsOf } from '../../ledger/src/testing/call-scenarios.js';
import { callLegsProjection } from './call-legs.projection.js';
import { Projector } from './projector.js';

/**
 * Each event's provenance, fixed by its id so that every delivery order sees the same (duplicates carry the same
 * bytes and dedupe): most live and signed, some live unsigned, some imported, so the legs' verification varies.
 */
const provenanceOf = (e: LedgerEvent): Pick<WebhookRecord['receipt'], 'source' | 'signatureStatus'> => {
  const n = createHash('sha256').update(e.eventId).digest()[0]! % 8;
  return n === 0 ? { source: 'live', signatureStatus: 'unverified' } : n === 1 ? { source: 'import', signatureStatus: 'not-checked' } : { source: 'live', signatureStatus: 'verified' };
};

/** One delivery per scenario event: the same event always has the same bytes, so duplicates dedupe. */
const toRecord = (e: LedgerEvent): WebhookRecord => {
  const body = Buffer.from(JSON.stringify({ id: e.eventId, type: e.type, leg: e.legId, data: e.data }));
  const translated = {
    type: e.type,
    legId: e.legId,
    accountId: e.accountId,
    parentLegId: e.parentLegId,
    occurredAt: e.occurredAt,
    providerSeq: e.providerSeq,
    party: e.party,
    data: e.data,
  } as TranslatedEvent;
  return {
    receipt: {
      provider: e.provider, body, bodySha256: createHash('sha256').update(body).digest(), contentType: 'application/json',
      path: '', query: '', headers: {}, remoteAddr: null, receivedAt: new Date(e.receivedAt), ...provenanceOf(e),
      signatureTimestamp: e.sentAt ? new Date(e.sentAt) : null,
    },
    events: [translated],
  };
};

/** Read model without the columns that depend on arrival order by definition (global positions). */
const readModel = async (tdb: TestDatabase) => {
  const legs = await sql<Record<string, unknown>>`SELECT * FROM call_legs ORDER BY provider, call_id`.execute(tdb.db);
  const recs = await sql<Record<string, unknown>>`SELECT * FROM recordings ORDER BY provider, call_id, recording_id`.execute(tdb.db);
  const hourly = await sql<Record<string, unknown>>`
    SELECT * FROM call_leg_hourly ORDER BY hour NULLS FIRST, provider, account_id NULLS FIRST, direction NULLS FIRST, status, is_root`.execute(tdb.db);
  const coarse = await sql<Record<string, unknown>>`
    SELECT * FROM call_provider_hourly ORDER BY hour NULLS FIRST, provider, status`.execute(tdb.db);
  const daily = await sql<Record<string, unknown>>`SELECT * FROM call_provider_daily ORDER BY day NULLS FIRST, provider, status`.execute(tdb.db);
  return {
    legs: legs.rows.map(({ last_position: _p, ...rest }) => rest), recordings: recs.rows, hourly: hourly.rows, coarse: coarse.rows, daily: daily.rows,
  };
};

const project = async (deliveries: LedgerEvent[], batch: number) => {
  const tdb = await createTestDatabase(4);
  try {
    const store = new EventStoreRepository(tdb.db);
    const projector = new Projector(tdb.db, [callLegsProjection], { batchSize: 3 });
    await projector.init();
    // Interleave appends and projection so that projection really runs on partial, out-of-order data.
    for (let i = 0; i < deliveries.length; i += batch) {
      await store.appendBatch(deliveries.slice(i, i + batch).map(toRecord));
      await projector.runOnce(callLegsProjection);
    }
    await projector.runUntilCaughtUp();
    const live = await readModel(tdb);
    await projector.rebuild('call_legs');
    const rebuilt = await readModel(tdb);
    return { live, rebuilt };
  } finally {
    await tdb.drop();
  }
};

describe('call_legs projection over generated scenarios', () => {
  it('gives the same read model for every delivery order and any duplication, live and rebuilt', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(callScenarioArb, { minLength: 1, maxLength: 3 }),
        fc.infiniteStream(fc.nat()),
        fc.integer({ min: 1, max: 4 }),
        async (scenarios, randomness, batch) => {
          const canonical = scenarios.flatMap((s) => s.events);
          const shuffled = [...canonical];
          const rnd = randomness[Symbol.iterator]();
          for (let i = shuffled.length - 1; i > 0; i--) {
            const j = rnd.next().value! % (i + 1);
            [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
          }
          const duplicated = shuffled.flatMap((e) => (rnd.next().value! % 4 === 0 ? [e, e] : [e]));
          const reference = await project(canonical, canonical.length);
          const other = await project(duplicated, batch);
          expect(other.live).toEqual(reference.live);
          expect(reference.rebuilt).toEqual(reference.live);
          expect(other.rebuilt).toEqual(other.live);
          expect(reference.live.legs.length).toBeGreaterThan(0);
          // Each leg's verification is the pure rule's over the events' receipts (read back through the store).
          const withProvenance = canonical.map((e) => {
            const p = provenanceOf(e);
            return { ...e, verification: receiptVerification(p.source, p.signatureStatus) };
          });
          const expected = legInputsOf(withProvenance).flatMap((input) => {
            const row = projectCallLeg(input);
            return row ? [`${row.provider}:${row.callId}=${row.verification}`] : [];
          });
          expect(reference.live.legs.map((l) => `${l.provider}:${l.call_id}=${l.verification}`).sort()).toEqual(expected.sort());
        },
      ),
      { numRuns: 12 },
    );
    // Twelve scenarios, each projected live and rebuilt on a real PostgreSQL: about 40 s on a quiet 2-core
    // machine, so the suite's 60 s leaves no room for a busy one.
  }, 180_000);
});

describe('call_legs bulk rebuild', () => {
  it('hands over to the commit-order replay at the oldest open transaction, losing nothing committed after it', async () => {
    const [a, b, c] = fc.sample(callScenarioArb, { numRuns: 3, seed: 11 });
    const tdb = await createTestDatabase(4);
    try {
      const store = new EventStoreRepository(tdb.db);
      const projector = new Projector(tdb.db, [callLegsProjection]);
      await projector.init();
      await store.appendBatch(a!.events.map(toRecord));
      await projector.runUntilCaughtUp();
      // An open transaction pins xmin: everything committed after it is above the bulk load's boundary.
      const held = new pg.Client({ connectionString: tdb.url });
      await held.connect();
      await held.query('BEGIN');
      await held.query('SELECT pg_current_xact_id()');
      await store.appendBatch(b!.events.map(toRecord));
      await projector.rebuild('call_legs');
      await store.appendBatch(c!.events.map(toRecord));
      await held.query('COMMIT');
      await held.end();
      await projector.runUntilCaughtUp();
      const rebuiltThenLive = await readModel(tdb);

      const reference = await project([...a!.events, ...b!.events, ...c!.events], 1000);
      expect(rebuiltThenLive).toEqual(reference.live);
      const legs = new Set(rebuiltThenLive.legs.map((l) => l.call_id));
      for (const s of [a!, b!, c!]) expect(legs.has(s.rootCallId)).toBe(true);
    } finally {
      await tdb.drop();
    }
  });
});

describe('call_legs switch-over', () => {
  it('publishes a generation whose columns differ from the live view (a version that drops a column)', async () => {
    const tdb = await createTestDatabase(4);
    try {
      const projector = new Projector(tdb.db, [callLegsProjection]);
      await projector.init();
      // The views as an older version left them: one column more than this version's tables have.
      const published = await sql<{ list: string }>`
        SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position) AS list FROM information_schema.columns
        WHERE table_schema = current_schema() AND table_name = 'call_legs'`.execute(tdb.db);
      await sql`CREATE OR REPLACE VIEW call_legs AS SELECT ${sql.raw(published.rows[0]!.list)}, 1 AS retired_column FROM call_legs_g1`.execute(tdb.db);
      await new EventStoreRepository(tdb.db).appendBatch(fc.sample(callScenarioArb, { numRuns: 1, seed: 5 })[0]!.events.map(toRecord));
      await projector.rebuild('call_legs');
      const cols = await sql<{ column_name: string }>`
        SELECT column_name FROM information_schema.columns WHERE table_name = 'call_legs'`.execute(tdb.db);
      expect(cols.rows.map((c) => c.column_name)).not.toContain('retired_column');
      expect((await readModel(tdb)).legs.length).toBeGreaterThan(0);
    } finally {
      await tdb.drop();
    }
  });
});

describe('call_legs hourly rollups from scratch', () => {
  it('equal the live rollups for cells with no account or no direction, histogram included', async () => {
    const leg = (legId: string, accountId: string | null, events: [TranslatedEvent['type'], string, object][]): WebhookRecord[] =>
      events.map(([type, occurredAt, data], i) => {
        const body = Buffer.from(JSON.stringify({ legId, i }));
        return {
          receipt: {
            provider: 'twilio', body, bodySha256: createHash('sha256').update(body).digest(), contentType: 'application/json', path: '', query: '',
            headers: {}, remoteAddr: null, receivedAt: new Date(occurredAt), source: 'import', signatureStatus: 'not-checked', signatureTimestamp: null,
          },
          events: [{ type, legId, accountId, parentLegId: null, occurredAt, providerSeq: null, party: null, data } as TranslatedEvent],
        };
      });
    const records = [
      ...leg('CA-null-account-1', null, [
        ['CallInitiated', '2026-03-01T10:05:00Z', { direction: 'inbound', from: '+1', to: '+2' }],
        ['CallAnswered', '2026-03-01T10:05:10Z', {}],
        ['CallCompleted', '2026-03-01T10:06:10Z', { outcome: 'completed', durationSec: 60, endReason: 'hangup' }],
      ]),
      ...leg('CA-null-account-2', null, [
        ['CallInitiated', '2026-03-01T10:20:00Z', { direction: 'inbound', from: '+1', to: '+3' }],
        ['CallAnswered', '2026-03-01T10:20:05Z', {}],
        ['CallCompleted', '2026-03-01T10:25:05Z', { outcome: 'completed', durationSec: 300, endReason: 'hangup' }],
      ]),
      // Completion only: no direction (the start falls back to the end, so a leg always has an hour).
      ...leg('CA-no-start', 'AC1', [['CallCompleted', '2026-03-01T11:00:00Z', { outcome: 'busy', durationSec: 0 }]]),
      ...leg('CA-no-start-2', null, [['CallCompleted', '2026-03-01T11:30:00Z', { outcome: 'completed', durationSec: 12 }]]),
    ];
    const tdb = await createTestDatabase(4);
    try {
      const projector = new Projector(tdb.db, [callLegsProjection]);
      await projector.init();
      await new EventStoreRepository(tdb.db).appendBatch(records);
      await projector.runUntilCaughtUp();
      const live = await readModel(tdb);
      await projector.rebuild('call_legs');
      const rebuilt = await readModel(tdb);
      expect(rebuilt.hourly).toEqual(live.hourly);
      // The cases the join must match on NULL are really there.
      expect(live.hourly.some((h) => h.account_id === null && h.hour !== null && h.legs === '2')).toBe(true);
      expect(live.hourly.some((h) => h.direction === null)).toBe(true);
    } finally {
      await tdb.drop();
    }
  });
});

describe('call_legs rollup talk extremes (talk_min_ms, talk_max_ms)', () => {
  it('follow a leg whose talk shrinks, and legs that trade talk within one bucket (a zero sum delta), live as rebuilt', async () => {
    let n = 0;
    const rec = (legId: string, type: TranslatedEvent['type'], occurredAt: string, data: object): WebhookRecord => {
      const body = Buffer.from(JSON.stringify({ legId, n: n++ }));
      return {
        receipt: {
          provider: 'twilio', body, bodySha256: createHash('sha256').update(body).digest(), contentType: 'application/json', path: '', query: '',
          headers: {}, remoteAddr: null, receivedAt: new Date(occurredAt), source: 'import', signatureStatus: 'not-checked', signatureTimestamp: null,
        },
        events: [{ type, legId, accountId: 'AC1', parentLegId: null, occurredAt, providerSeq: null, party: null, data } as TranslatedEvent],
      };
    };
    const answered = (legId: string, talkSec: number) => [
      rec(legId, 'CallInitiated', '2026-03-01T10:05:00Z', { direction: 'inbound', from: '+1', to: '+2' }),
      rec(legId, 'CallAnswered', '2026-03-01T10:05:10Z', {}),
      rec(legId, 'CallCompleted', new Date(Date.parse('2026-03-01T10:05:10Z') + talkSec * 1000).toISOString(), { outcome: 'completed' }),
    ];
    const extremes = async (tdb: TestDatabase) =>
      (await sql<{ mn: string; mx: string }>`SELECT talk_min_ms::text AS mn, talk_max_ms::text AS mx FROM call_provider_hourly WHERE status = 'completed'`.execute(tdb.db)).rows;
    const tdb = await createTestDatabase(4);
    try {
      const store = new EventStoreRepository(tdb.db);
      const projector = new Projector(tdb.db, [callLegsProjection]);
      await projector.init();
      /** Appends, projects live, and checks the completed cell's talk extremes (ms). */
      const step = async (records: WebhookRecord[], mn: string, mx: string) => {
        await store.appendBatch(records);
        await projector.runUntilCaughtUp();
        expect(await extremes(tdb)).toEqual([{ mn, mx }]);
      };
      /** The rollups named, as they are live, equal what a rebuild makes of the same events. */
      const expectRebuiltEqual = async (tables: ('coarse' | 'hourly' | 'daily')[]) => {
        const live = await readModel(tdb);
        await projector.rebuild('call_legs');
        const rebuilt = await readModel(tdb);
        for (const t of tables) expect(rebuilt[t]).toEqual(live[t]);
      };
      // Derived talks of 61 s and 69 s (one histogram bucket, [60, 70)), then a 300 s one.
      await step([...answered('CA-a', 61), ...answered('CA-b', 69), ...answered('CA-c', 300)], '61000', '300000');
      // The provider's own durations arrive in one batch: c shrinks to 100 s, a and b trade 61/69 for 62/68
      // (same bucket, same sum: the additive delta of a and b is zero).
      const provider = (legId: string, sec: number) => rec(legId, 'CallCompleted', '2026-03-01T10:20:00Z', { outcome: 'completed', durationSec: sec });
      await step([provider('CA-a', 62), provider('CA-b', 68), provider('CA-c', 100)], '62000', '100000');
      await expectRebuiltEqual(['coarse', 'hourly']);

      // Talk that changes strictly between the cell's extremes keeps them without reading the cell's legs (the
      // shortcut in rollups.ts recompute); one that was an extreme sends the cell back to its legs.
      await step([...answered('CA-d', 150), ...answered('CA-e', 200)], '62000', '200000');
      await step([provider('CA-c', 120)], '62000', '200000');
      await step([provider('CA-d', 400)], '62000', '400000');
      await step([...answered('CA-f', 50), ...answered('CA-g', 500)], '50000', '500000');
      // Both extremes leave: the cell's legs are read again.
      await step([provider('CA-f', 95), provider('CA-g', 130)], '62000', '400000');
      // A talk inside leaves, a shorter one than the least enters: widened, not read again.
      await step([provider('CA-e', 30)], '30000', '400000');
      await expectRebuiltEqual(['coarse', 'hourly', 'daily']);
    } finally {
      await tdb.drop();
    }
  });
});
