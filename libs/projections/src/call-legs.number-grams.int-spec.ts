import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as numberGrams5 from '../../../migrations/20261206000300_number_grams5.js';
import { createTestDatabase, type TestDatabase } from '@lib/testing';
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
