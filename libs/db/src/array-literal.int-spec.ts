import { sql } from 'kysely';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@lib/testing';
import { arrayLiteral } from './array-literal.js';

let tdb: TestDatabase;
beforeAll(async () => {
  tdb = await createTestDatabase(2);
});
afterAll(async () => tdb.drop());

/** What PostgreSQL reads from a parameter, given as pg serializes the array and as arrayLiteral does. */
const both = async (values: readonly unknown[], type: string) => {
  const r = await sql<{ a: unknown[] | null; b: unknown[] | null }>`
    SELECT ${values}::${sql.raw(type)}[] AS a, ${arrayLiteral(values)}::${sql.raw(type)}[] AS b`.execute(tdb.db);
  return r.rows[0]!;
};

describe('arrayLiteral', () => {
  it('gives PostgreSQL the same text arrays as pg does, for any strings and nulls', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(fc.option(fc.string({ unit: 'binary' }), { nil: null }), { maxLength: 8 }), async (values) => {
        const clean = values.map((v) => (v === null ? v : v.split(String.fromCharCode(0)).join(''))); // text cannot hold NUL at all
        const { a, b } = await both(clean, 'text');
        expect(b).toEqual(a);
      }),
      { numRuns: 300 },
    );
  });

  it('gives the same for strings made of the characters that a literal treats specially', async () => {
    const unit = fc.constantFrom('a', '"', '\\', '{', '}', ',', ' ', 'N', 'U', 'L', 'n', 'u', '\t', "'");
    await fc.assert(
      fc.asyncProperty(fc.array(fc.option(fc.string({ unit, maxLength: 6 }), { nil: null }), { maxLength: 6 }), async (values) => {
        const { a, b } = await both(values, 'text');
        expect(b).toEqual(a);
      }),
      { numRuns: 300 },
    );
  });

  it('keeps quotes, backslashes, braces, commas, blanks, NULL spelled as a string and the empty string', async () => {
    const values = ['a"b', 'c\\d', '{e}', 'f,g', ' h ', 'NULL', 'null', '', null, 'ü€😀', '\u2028'];
    expect(typeof arrayLiteral(values)).toBe('string');
    const { a, b } = await both(values, 'text');
    expect(b).toEqual(a);
    expect(b).toEqual(values);
    // A backslash before a letter JSON escapes with is taken for such an escape: pg's path, the same result.
    expect(arrayLiteral(['\\n'])).toEqual(['\\n']);
  });

  it('gives the same numbers, booleans and times, and falls back to pg for what JSON spells otherwise', async () => {
    for (const [values, type] of [
      [[1, -0, 0.1, 1e21, 5e-324, null, 2 ** 53], 'float8'],
      [[200, null, -3], 'int'],
      [[true, false, null], 'bool'],
      [['2026-12-01T14:00:00.000Z', null], 'timestamptz'],
      [['1234567890123', null], 'bigint'],
    ] as [readonly unknown[], string][]) {
      expect(typeof arrayLiteral(values)).toBe('string');
      const { a, b } = await both(values, type);
      expect(b).toEqual(a);
    }
    for (const values of [[Number.NaN], [Number.POSITIVE_INFINITY], ['a\nb'], ['\ud800'], [new Date(0)], [1n]] as unknown[][]) expect(arrayLiteral(values)).toBe(values);
  });
});
