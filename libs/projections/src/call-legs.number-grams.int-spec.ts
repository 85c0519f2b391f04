import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as numberGrams5 from '../../../migrations/20261206000300_number_grams5.js';
import * as numberGrams5Linear from '../../../migrations/20261206000400_number_grams5_linear.js';
import { EventStoreRepository } from '@lib/event-store';
import { newEvent } from '@lib/ledger';
import { createTestDatabase, jambonzRecord, type TestDatabase } from '@lib/testing';
import { callLegsProjection } from './call-legs.projection.js';
import { Projector } from './projector.js';

let tdb: TestDatabase;

beforeAll(async () => {
  tdb = await createTestDatabase(2);
});
afterAll(async () => tdb.drop());

// Few characters, so that grams recur; digits, LIKE's wildcard, letters outside ASCII and outside the BMP.
const numberArb = fc.option(
  fc.array(fc.constantFrom('0', '5', '%', 'ä', '📞', 'x'), { maxLength: 14 }).map((cs) => cs.join('')),
  { nil: null, freq: 8 },
);

describe('call_leg_number_grams5 and call_leg_needle_grams5 (migration 20261206000300_number_grams5)', () => {
  it("a leg's grams hold the grams of every substring of 5 characters or more of either number", async () => {
    await fc.assert(
      fc.asyncProperty(numberArb, numberArb, fc.boolean(), fc.nat(), fc.nat(), async (a, b, pickA, at, size) => {
        const source = (pickA ? a : b) ?? a ?? b;
        fc.pre(source !== null && [...source].length >= 5);
        const chars = [...source!];
        const len = 5 + (size % (chars.length - 4));
        const start = at % (chars.length - len + 1);
        const needle = chars.slice(start, start + len).join('');
        const r = await sql<{ held: boolean; n: number }>`
          SELECT call_leg_number_grams5(${a}, ${b}) @> call_leg_needle_grams5(${needle}) AS held, cardinality(call_leg_needle_grams5(${needle})) AS n`.execute(tdb.db);
        expect(r.rows[0]).toEqual({ held: true, n: Math.min(3, len - 4) });
      }),
      { numRuns: 300 },
    );
  });

  it('gives no grams to a needle under 5 characters or to missing numbers, and a number one gram per 5 characters in a row', async () => {
    const r = await sql<{ short: number[]; none: number[]; all: number; last: boolean }>`
      SELECT call_leg_needle_grams5('5📞45') AS short, call_leg_number_grams5(NULL, NULL) AS none,
        cardinality(call_leg_number_grams5('+13125555545', '+18475')) AS all,
        call_leg_needle_grams5('+13125555545') = ARRAY[hashtext('55555'), hashtext('55554'), hashtext('55545')] AS last`.execute(tdb.db);
    // 12 characters: 8 grams; 6 characters: 2.
    expect(r.rows[0]).toEqual({ short: [], none: [], all: 10, last: true });
  });

  // The definition, spelled the slow way: every 5-character substring of the caller, then of the callee.
  const definition = (a: string | null, b: string | null) => sql<{ same: boolean; n: number }>`
    SELECT call_leg_number_grams5(${a}, ${b}) = coalesce(
      (SELECT array_agg(hashtext(substr(u.n, i, 5)) ORDER BY u.k, i)
       FROM unnest(ARRAY[${a}, ${b}]::text[]) WITH ORDINALITY AS u(n, k), generate_series(1, length(u.n) - 4) AS i),
      '{}') AS same, cardinality(call_leg_number_grams5(${a}, ${b})) AS n`;

  it('gives every number, short or over 64 characters (split once, migration 20261206000400), the grams of its definition', async () => {
    const longArb = fc.option(
      fc.array(fc.constantFrom('0', '5', '%', 'ä', '📞', 'x'), { maxLength: 160 }).map((cs) => cs.join('')),
      { nil: null, freq: 8 },
    );
    await fc.assert(
      fc.asyncProperty(longArb, longArb, async (a, b) => {
        const r = (await definition(a, b).execute(tdb.db)).rows[0]!;
        const grams = (x: string | null) => Math.max(0, [...(x ?? '')].length - 4);
        expect(r).toEqual({ same: true, n: grams(a) + grams(b) });
      }),
      { numRuns: 200, examples: [['1'.repeat(64), '2'.repeat(65)], ['📞'.repeat(65), null]] },
    );
  });

  it('projects a leg whose caller is 300,000 characters long (an authentic body may be 1 MB) and finds it by its grams', async () => {
    // Before 20261206000400 the grams of such a number took substr from the start of the text for each of its
    // characters: this projection did not end within the test's timeout.
    const caller = Array.from({ length: 300_000 }, (_, i) => String((i * 7919 + (i >> 5)) % 10)).join('');
    // A database of its own: the leg would be one more row for the tests below.
    const own = await createTestDatabase(2);
    try {
      await new EventStoreRepository(own.db).appendBatch([
        jambonzRecord('long-caller', { events: [newEvent('CallInitiated', 'long-caller', { direction: 'inbound', from: caller, to: '+13125555545' }, { accountId: 'acc' })] }),
      ]);
      const projector = new Projector(own.db, [callLegsProjection]);
      await projector.init();
      await projector.runUntilCaughtUp();
      const needle = caller.slice(-9);
      const found = await sql<{ call_id: string; grams: number }>`
        SELECT call_id, cardinality(number_grams) AS grams FROM call_legs
        WHERE number_grams @> call_leg_needle_grams5(${needle}) AND from_number LIKE ${`%${needle}`}`.execute(own.db);
      // One gram per 5 characters in a row: 299,996 of the caller's, 8 of the callee's.
      expect(found.rows).toEqual([{ call_id: 'long-caller', grams: 300_000 - 4 + 8 }]);
    } finally {
      await own.drop();
    }
  });

  it('20261206000400 goes down to the loop over substr and back up', async () => {
    const body = async () => (await sql<{ d: string }>`SELECT pg_get_functiondef('call_leg_number_grams5(text, text)'::regprocedure) AS d`.execute(tdb.db)).rows[0]!.d;
    expect(await body()).toContain('string_to_array(n, NULL)');
    await numberGrams5Linear.down(tdb.db);
    expect(await body()).not.toContain('string_to_array');
    expect((await definition('1'.repeat(70), null).execute(tdb.db)).rows[0]).toEqual({ same: true, n: 66 });
    await numberGrams5Linear.up(tdb.db);
    expect(await body()).toContain('string_to_array(n, NULL)');
  });

  const functions = async () =>
    (await sql<{ proname: string }>`SELECT proname FROM pg_proc WHERE proname IN ('call_leg_number_grams5', 'call_leg_needle_grams5') ORDER BY 1`.execute(tdb.db)).rows.map((r) => r.proname);

  it('goes down and comes back up on a store with no generation that uses them', async () => {
    await numberGrams5.down(tdb.db);
    expect(await functions()).toEqual([]);
    await numberGrams5.up(tdb.db);
    expect(await functions()).toEqual(['call_leg_needle_grams5', 'call_leg_number_grams5']);
  });

  it("keeps each leg's grams in the generation (stored, indexed) as its legs are written; a down leaves the functions to it", async () => {
    await new Projector(tdb.db, [callLegsProjection]).init();
    const insert = (id: string) => sql`
      INSERT INTO call_legs (provider, call_id, root_call_id, status, from_number, to_number, final, event_count, last_position, verification)
      VALUES ('jambonz', ${id}, ${id}, 'initiated', '+13125555545', NULL, false, 1, 1, 'verified')`.execute(tdb.db);
    await insert('ca1');
    await sql`UPDATE call_legs SET to_number = '+18475550100' WHERE call_id = 'ca1'`.execute(tdb.db);
    const same = () => sql<{ call_id: string; same: boolean }>`
      SELECT call_id, number_grams = call_leg_number_grams5(from_number, to_number) AS same FROM call_legs ORDER BY call_id`.execute(tdb.db);
    expect((await same()).rows).toEqual([{ call_id: 'ca1', same: true }]);
    const indexes = await sql<{ indexname: string }>`SELECT indexname FROM pg_indexes WHERE indexdef LIKE '%USING gin (number_grams)%'`.execute(tdb.db);
    expect(indexes.rows).toHaveLength(1);

    // The generation is still served (its view depends on the column) and still written until a rebuild replaces it.
    await numberGrams5.down(tdb.db);
    expect(await functions()).toEqual(['call_leg_needle_grams5', 'call_leg_number_grams5']);
    await insert('ca2');
    await numberGrams5.up(tdb.db);
    expect((await same()).rows).toEqual([{ call_id: 'ca1', same: true }, { call_id: 'ca2', same: true }]);
    const held = await sql<{ call_id: string }>`SELECT call_id FROM call_legs WHERE number_grams @> call_leg_needle_grams5('5555545') ORDER BY call_id`.execute(tdb.db);
    expect(held.rows.map((r) => r.call_id)).toEqual(['ca1', 'ca2']);
  });
});
