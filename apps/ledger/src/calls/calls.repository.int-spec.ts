import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callLegsProjection, Projector } from '@lib/projections';
import { createTestDatabase, type TestDatabase } from '@lib/testing';
import { CallsRepository, type CallFilters } from './calls.repository.js';

let tdb: TestDatabase;
let repo: CallsRepository;

beforeAll(async () => {
  tdb = await createTestDatabase(4);
  await new Projector(tdb.db, [callLegsProjection]).init();
  repo = new CallsRepository(tdb.db);
});
afterAll(async () => tdb.drop());

interface Seed {
  provider: 'freeclimb' | 'jambonz';
  callId: string;
  startedAt: string | null;
  from: string;
}

const seed = async (legs: Seed[]) => {
  await sql`DELETE FROM call_legs`.execute(tdb.db);
  if (legs.length === 0) return;
  await sql`
    INSERT INTO call_legs (provider, call_id, root_call_id, status, started_at, from_number, final, event_count, last_position, verification)
    SELECT p, c, c, 'initiated', s, f, false, 1, 1, 'verified'
    FROM unnest(${legs.map((l) => l.provider)}::text[], ${legs.map((l) => l.callId)}::text[], ${legs.map((l) => l.startedAt)}::timestamptz[],
      ${legs.map((l) => l.from)}::text[]) AS t(p, c, s, f)`.execute(tdb.db);
};

/** The documented order: startedAt DESC with unknown starts last, then provider, callId. */
const expectedOrder = (legs: Seed[]) =>
  [...legs]
    .sort((a, b) => {
      if (a.startedAt !== b.startedAt) {
        if (a.startedAt === null) return 1;
        if (b.startedAt === null) return -1;
        return a.startedAt < b.startedAt ? 1 : -1;
      }
      return a.provider !== b.provider ? (a.provider < b.provider ? -1 : 1) : a.callId < b.callId ? -1 : 1;
    })
    .map((l) => `${l.provider}:${l.callId}`);

const walk = async (filters: CallFilters, limit: number) => {
  const out: string[] = [];
  let after = null;
  for (let pages = 0; pages < 1000; pages += 1) {
    const { legs, keys } = await repo.listLegs(filters, after, limit);
    out.push(...legs.slice(0, limit).map((l) => `${l.provider}:${l.callId}`));
    if (legs.length <= limit) return out;
    after = keys[limit - 1]!;
  }
  throw new Error('paging did not end');
};

// Few distinct instants (with microseconds) so that ties and the dated/undated boundary are common.
const legsArb = fc.uniqueArray(
  fc.record({
    provider: fc.constantFrom('freeclimb' as const, 'jambonz' as const),
    callId: fc.stringMatching(/^ca[0-9a-f]{4}$/),
    startedAt: fc.option(fc.constantFrom('2026-01-01T00:00:00.000001Z', '2026-01-01T00:00:00.000002Z', '2026-03-01T12:00:00Z', '2025-12-31T23:59:59.999999Z'), { nil: null }),
    from: fc.constantFrom('+13125550100', '+1312%50_', '+14155550100'),
  }),
  { selector: (l) => `${l.provider}:${l.callId}`, maxLength: 25 },
);

describe('CallsRepository.listLegs', () => {
  it('pages in the documented order, with no gap or repeat, across ties at microsecond precision and unknown starts', async () => {
    await fc.assert(
      fc.asyncProperty(legsArb, fc.integer({ min: 1, max: 7 }), async (legs, limit) => {
        await seed(legs);
        expect(await walk({}, limit)).toEqual(expectedOrder(legs));
        expect(await walk({ provider: 'jambonz' }, limit)).toEqual(expectedOrder(legs.filter((l) => l.provider === 'jambonz')));
      }),
      { numRuns: 40 },
    );
  });

  it('matches a number prefix literally, LIKE wildcards included, and leaves unknown starts out of a time window', async () => {
    await seed([
      { provider: 'freeclimb', callId: 'ca0001', startedAt: '2026-01-01T00:00:00Z', from: '+1312%50_' },
      { provider: 'freeclimb', callId: 'ca0002', startedAt: '2026-01-01T00:00:01Z', from: '+1312555' },
      { provider: 'freeclimb', callId: 'ca0003', startedAt: null, from: '+1312%99' },
    ]);
    const ids = async (f: CallFilters) => (await repo.listLegs(f, null, 10)).legs.map((l) => l.callId);
    expect(await ids({ from: '+1312%*' })).toEqual(['ca0001', 'ca0003']);
    expect(await ids({ from: '+1312*' })).toEqual(['ca0002', 'ca0001', 'ca0003']);
    expect(await ids({ from: '+1312%50_' })).toEqual(['ca0001']);
    expect(await ids({ since: '2025-01-01T00:00:00Z' })).toEqual(['ca0002', 'ca0001']);
  });
});
