import fc from 'fast-check';
import { sql } from 'kysely';
import { Logger } from '@nestjs/common';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
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

interface NumberSeed {
  provider: 'freeclimb' | 'jambonz';
  callId: string;
  startedAt: string | null;
  from: string | null;
  to: string | null;
}

const seedNumbers = async (legs: NumberSeed[]) => {
  await sql`DELETE FROM call_legs`.execute(tdb.db);
  if (legs.length === 0) return;
  await sql`
    INSERT INTO call_legs (provider, call_id, root_call_id, status, started_at, from_number, to_number, final, event_count, last_position, verification)
    SELECT p, c, c, 'initiated', s, f, t, false, 1, 1, 'verified'
    FROM unnest(${legs.map((l) => l.provider)}::text[], ${legs.map((l) => l.callId)}::text[], ${legs.map((l) => l.startedAt)}::timestamptz[],
      ${legs.map((l) => l.from)}::text[], ${legs.map((l) => l.to)}::text[]) AS t(p, c, s, f, t)`.execute(tdb.db);
};

// Numbers over a few characters, LIKE's wildcards and escape among them, so that substrings recur and must stay literal.
// A character beyond one UTF-16 unit too: the index hint takes a needle's last 4 characters, not UTF-16 units.
const numberChars = ['0', '1', '5', '%', '_', '\\', '📞'];
const numberArb = fc.option(
  fc.tuple(fc.boolean(), fc.array(fc.constantFrom(...numberChars), { minLength: 2, maxLength: 8 })).map(([plus, cs]) => (plus ? '+' : '') + cs.join('')),
  { nil: null, freq: 6 },
);
const legsWithNumbers = (numbers: fc.Arbitrary<string | null>, maxLength: number) =>
  fc.uniqueArray(
    fc.record({
      provider: fc.constantFrom('freeclimb' as const, 'jambonz' as const),
      callId: fc.stringMatching(/^ca[0-9a-f]{4}$/),
      startedAt: fc.option(fc.constantFrom('2026-01-01T00:00:00.000001Z', '2026-01-01T00:00:00.000002Z', '2026-03-01T12:00:00Z'), { nil: null }),
      from: numbers,
      to: numbers,
    }),
    { selector: (l) => `${l.provider}:${l.callId}`, maxLength },
  );
const numberLegsArb = legsWithNumbers(numberArb, 25);
// Longer than 4 characters too: such a needle asks the index for its last 4 and checks the rest apart. Mostly a
// piece of a seeded number (so that the search finds something), sometimes any text (so that it may find nothing).
const searchArb = fc
  .tuple(numberLegsArb, fc.nat(), fc.nat(), fc.integer({ min: 3, max: 6 }), fc.array(fc.constantFrom(...numberChars), { minLength: 3, maxLength: 6 }))
  .map(([legs, pick, at, len, other]) => {
    const numbers = legs.flatMap((l) => [l.from, l.to]).filter((n): n is string => !!n && [...n].length >= 3);
    if (numbers.length === 0 || pick % 5 === 0) return { legs, needle: other.join('') };
    const n = [...numbers[pick % numbers.length]!];
    const size = Math.min(len, n.length);
    const start = at % (n.length - size + 1);
    // Half the time the piece ends the number, so that suffix searches find something too.
    return { legs, needle: (pick % 2 === 0 ? n.slice(n.length - size) : n.slice(start, start + size)).join('') };
  });

/** numberContains pages through, and counts, exactly the legs whose caller or callee holds the needle. */
const expectNumberContains = async (legs: NumberSeed[], needle: string, limit: number) => {
  await seedNumbers(legs);
  const want = legs.filter((l) => !!l.from?.includes(needle) || !!l.to?.includes(needle));
  expect(await walk({ numberContains: needle }, limit)).toEqual(expectedOrder(want as Seed[]));
  expect(await repo.countLegs({ numberContains: needle })).toBe(want.length);
};

describe('CallsRepository number search', () => {
  it('numberContains selects the legs whose caller or callee contains the text literally, pages without gap or repeat, and counts them', async () => {
    await fc.assert(
      fc.asyncProperty(searchArb, fc.integer({ min: 1, max: 6 }), async ({ legs, needle }, limit) => {
        await expectNumberContains(legs, needle, limit);
      }),
      { numRuns: 40 },
    );
  });

  it('from and to take a substring (*…*) and a suffix (*…) besides the exact number and the prefix', async () => {
    await fc.assert(
      fc.asyncProperty(searchArb, fc.integer({ min: 1, max: 6 }), async ({ legs, needle }, limit) => {
        await seedNumbers(legs);
        const pick = (ok: (l: NumberSeed) => boolean) => expectedOrder(legs.filter(ok) as Seed[]);
        expect(await walk({ from: `*${needle}*` }, limit)).toEqual(pick((l) => !!l.from?.includes(needle)));
        expect(await walk({ to: `*${needle}` }, limit)).toEqual(pick((l) => !!l.to?.endsWith(needle)));
        expect(await walk({ to: `${needle}*` }, limit)).toEqual(pick((l) => !!l.to?.startsWith(needle)));
        expect(await walk({ from: `*${needle}*`, to: `*${needle}*` }, limit)).toEqual(pick((l) => !!l.from?.includes(needle) && !!l.to?.includes(needle)));
        expect(await repo.countLegs({ to: `*${needle}` })).toBe(legs.filter((l) => !!l.to?.endsWith(needle)).length);
      }),
      { numRuns: 30 },
    );
  });

  // Source of the rule: migration 20261206000300_number_grams5 (a needle of 5 characters or more asks the legs'
  // 5-grams). Characters beyond one UTF-16 unit and LIKE's wildcards are in the alphabet, so that the service's
  // count of characters (code points) and PostgreSQL's agree, and the check stays literal.
  it('numberContains of 5 characters or more finds exactly the legs whose caller or callee holds it, whatever the characters', async () => {
    const chars = ['5', '0', '%', '_', 'ä', '📞'];
    const num = fc.option(fc.array(fc.constantFrom(...chars), { minLength: 4, maxLength: 12 }).map((cs) => cs.join('')), { nil: null, freq: 6 });
    const arb = fc.tuple(legsWithNumbers(num, 20), fc.nat(), fc.nat(), fc.integer({ min: 5, max: 9 }), fc.array(fc.constantFrom(...chars), { minLength: 5, maxLength: 9 })).map(([legs, pick, at, len, other]) => {
      const numbers = legs.flatMap((l) => [l.from, l.to]).filter((n): n is string => !!n && [...n].length >= 5);
      if (numbers.length === 0 || pick % 4 === 0) return { legs, needle: other.join('') };
      const n = [...numbers[pick % numbers.length]!];
      const size = Math.min(len, n.length);
      const start = at % (n.length - size + 1);
      return { legs, needle: n.slice(start, start + size).join('') };
    });
    await fc.assert(
      fc.asyncProperty(arb, fc.integer({ min: 1, max: 5 }), async ({ legs, needle }, limit) => {
        await expectNumberContains(legs, needle, limit);
      }),
      { numRuns: 40 },
    );
  });

  it('answers a long needle through the trigram form while the published legs have no 5-grams (a generation of an older version, its successor being rebuilt)', async () => {
    const legs: NumberSeed[] = [
      { provider: 'freeclimb', callId: 'ca0001', startedAt: '2026-01-01T00:00:00.000001Z', from: '+13125555545', to: '+18475550100' },
      { provider: 'jambonz', callId: 'ca0002', startedAt: '2026-03-01T12:00:00Z', from: '+13125554555', to: '+15555545000' },
      { provider: 'jambonz', callId: 'ca0003', startedAt: null, from: '+13125550100', to: null },
      { provider: 'freeclimb', callId: 'ca0004', startedAt: '2026-02-01T00:00:00Z', from: 'x📞5551', to: null },
    ];
    await seedNumbers(legs);
    const g = (await sql<{ g: number }>`SELECT generation AS g FROM projection_checkpoints WHERE name = 'call_legs'`.execute(tdb.db)).rows[0]!.g;
    const cols = await sql<{ list: string }>`
      SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position) AS list FROM information_schema.columns
      WHERE table_schema = current_schema() AND table_name = 'call_legs' AND column_name <> 'number_grams'`.execute(tdb.db);
    const before = await walk({ numberContains: '5555545' }, 1);
    expect(before).toEqual(['jambonz:ca0002', 'freeclimb:ca0001']);
    // Its last 4 characters cut a UTF-16 pair in the trigram form's hint if counted in units.
    expect(await walk({ numberContains: 'x📞555' }, 1)).toEqual(['freeclimb:ca0004']);
    try {
      await sql`DROP VIEW call_legs`.execute(tdb.db);
      await sql`CREATE VIEW call_legs AS SELECT ${sql.raw(cols.rows[0]!.list)} FROM ${sql.table(`call_legs_g${g}`)}`.execute(tdb.db);
      const warn = vi.spyOn(Logger.prototype, 'warn').mockImplementation(() => undefined);
      expect(await walk({ numberContains: '5555545' }, 1)).toEqual(before);
      expect(await walk({ numberContains: 'x📞555' }, 1)).toEqual(['freeclimb:ca0004']);
      // Said once for these searches (at most every 10 minutes), so that a generation without grams is noticed.
      expect(warn.mock.calls.filter(([m]) => String(m).includes('number_grams'))).toHaveLength(1);
      warn.mockRestore();
      expect(await repo.countLegs({ numberContains: '5555545' })).toBe(2);
    } finally {
      await tdb.db.transaction().execute((trx) => callLegsProjection.publish(trx, g));
    }
    expect(await repo.countLegs({ numberContains: '5555545' })).toBe(2);
  });

  it('each generation of the read model has the trigram index that serves the substring search, and the statistics that keep its plans right', async () => {
    const idx = await sql<{ indexdef: string }>`
      SELECT i.indexdef FROM pg_indexes i
      WHERE i.tablename = (SELECT 'call_legs_g' || generation FROM projection_checkpoints WHERE name = 'call_legs') AND i.indexdef LIKE '%gin_trgm_ops%'`.execute(tdb.db);
    expect(idx.rows.map((r) => r.indexdef)).toEqual([expect.stringMatching(/USING gin \(from_number gin_trgm_ops, to_number gin_trgm_ops\)/)]);
    const grams = await sql<{ indexdef: string }>`
      SELECT i.indexdef FROM pg_indexes i
      WHERE i.tablename = (SELECT 'call_legs_g' || generation FROM projection_checkpoints WHERE name = 'call_legs') AND i.indexdef LIKE '%number_grams%'`.execute(tdb.db);
    expect(grams.rows.map((r) => r.indexdef)).toEqual([expect.stringMatching(/USING gin \(number_grams\)/)]);
    const stats = await sql<{ stxname: string }>`
      SELECT s.stxname FROM pg_statistic_ext s JOIN projection_checkpoints c ON c.name = 'call_legs'
      WHERE s.stxrelid = ('call_legs_g' || c.generation)::regclass ORDER BY 1`.execute(tdb.db);
    expect(stats.rows.map((r) => r.stxname.replace(/_g\d+_/, '_g_'))).toEqual(['call_legs_g_from_number_expr', 'call_legs_g_to_number_expr']);
  });
});

describe('CallsRepository leg rows', () => {
  it("reads each leg as one JSON value with the values the driver's column parsers gave (microsecond times, non-finite floats, arrays, jsonb)", async () => {
    // Any instant 2001–2096 at microsecond precision; doubles including NaN, ±Infinity, -0 and tiny ones.
    const micros = fc.integer({ min: 978_307_200_000_000, max: 3_978_307_200_000_000 }).map((us) => {
      const iso = new Date(Math.floor(us / 1000)).toISOString();
      return `${iso.slice(0, 23)}${String(us % 1000).padStart(3, '0')}+00`;
    });
    const float = fc.oneof(fc.double(), fc.constantFrom(0.029, 1e-7, 235.5, 7));
    await fc.assert(
      fc.asyncProperty(fc.option(micros), micros, fc.option(float), fc.option(float), fc.array(fc.string({ maxLength: 5 }), { maxLength: 3 }), async (started, answered, ring, pdd, conferences) => {
        await sql`DELETE FROM call_legs`.execute(tdb.db);
        // Non-finite doubles travel as text (NaN, Infinity, -Infinity), as PostgreSQL spells them.
        const f = (v: number | null) => (v === null ? null : Object.is(v, -0) ? '-0' : String(v));
        await sql`
          INSERT INTO call_legs (provider, call_id, root_call_id, status, started_at, answered_at, ring_duration_sec, pdd_sec, conference_ids,
            invalid_fields, final, event_count, last_position, verification)
          VALUES ('jambonz', 'c1', 'c1', 'completed', ${started}::timestamptz, ${answered}::timestamptz, ${f(ring)}::float8, ${f(pdd)}::float8,
            ${conferences}::text[], '[{"field": "to", "value": "x"}]', true, 3, 9007199254740993, 'verified')`.execute(tdb.db);
        const driver = await sql<{ started_at: Date | null; answered_at: Date; ring_duration_sec: number | null; pdd_sec: number | null; conference_ids: string[]; invalid_fields: unknown }>`
          SELECT started_at, answered_at, ring_duration_sec, pdd_sec, conference_ids, invalid_fields FROM call_legs`.execute(tdb.db);
        const d = driver.rows[0]!;
        const [leg] = await repo.findLegs('c1');
        expect(leg!.startedAt).toBe(d.started_at ? d.started_at.toISOString() : null);
        expect(leg!.answeredAt).toBe(d.answered_at.toISOString());
        expect(leg!.ringDurationSec).toStrictEqual(d.ring_duration_sec);
        expect(leg!.pddSec).toStrictEqual(d.pdd_sec);
        expect(leg!.conferenceIds).toStrictEqual(d.conference_ids);
        expect(leg!.invalidFields).toStrictEqual(d.invalid_fields);
        expect(leg!.lastPosition).toBe('9007199254740993');
      }),
      { numRuns: 60 },
    );
  });
});
