import { sql, type RawBuilder } from 'kysely';
import type { Executor } from './projection.js';

/** `statement` run only when `condition` (SQL) holds, in one round trip; the statement holds no single quote. */
const onlyIf = (condition: string, statement: string): RawBuilder<unknown> =>
  sql.raw(`DO $do$ BEGIN IF ${condition} THEN EXECUTE '${statement}'; END IF; END $do$`);

/**
 * Number substring search (`numberContains`, `from=*…*`): one trigram GIN index over both columns serves a
 * LIKE '%…%' on either, and their OR as a BitmapOr, instead of reading every leg. Without pg_trgm (the
 * migration only warns when it cannot create it) the statement does nothing and the search still answers, by
 * scanning. A rebuild's bulk load creates it after the rows, like the other query indexes (call-legs/schema.ts):
 * a GIN index maintained row by row would dominate the load.
 */
export const numbersTrgmIndex = (g: number): RawBuilder<unknown> =>
  onlyIf(`EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm')`,
    `CREATE INDEX IF NOT EXISTS call_legs_g${g}_numbers_trgm ON call_legs_g${g} USING gin (from_number gin_trgm_ops, to_number gin_trgm_ops)`);

export const numbersTrgmIndexName = (g: number): string => `call_legs_g${g}_numbers_trgm`;

/**
 * A needle of 5 characters or more (`numberContains`) asks for its last three 5-grams instead of trigrams: the
 * legs keep the hashes of every 5-character substring of both numbers in `number_grams`, a stored generated column
 * (`call_leg_number_grams5`, migration 20261206000300_number_grams5), under a GIN index. Trigrams cannot tell apart
 * needles made of the digits every number shares (`5555545` against `+1312555…`: 22,000 candidates for 200
 * matches at a million legs, each a visit to the wide legs table); their 5-grams have about as many candidates as
 * matches. Stored rather than an expression index: a needle that most legs hold is counted (`withTotal`) or walked
 * by a scan that tests every leg, and computing the grams of each (7.8 s at a million legs, against 0.16 s for the
 * LIKE alone) is what an expression index would have cost there; a stored array costs about 90 bytes a leg and
 * its computation once per write. Its own column statistics (most common elements, by ANALYZE) give the planner
 * each gram's frequency, so a needle most legs hold still walks the time index for its first page.
 *
 * Guarded on the function: a projector that creates its tables on a store whose migrations have not run yet
 * (libs/db database-roles.int-spec.ts upgrades such a store) makes them without the column, and its index then
 * has nothing to build on.
 */
export const numberGramsColumn = (g: number): RawBuilder<unknown> =>
  onlyIf(`to_regprocedure('call_leg_number_grams5(text, text)') IS NOT NULL`,
    `ALTER TABLE call_legs_g${g} ADD COLUMN IF NOT EXISTS number_grams int[] GENERATED ALWAYS AS (call_leg_number_grams5(from_number, to_number)) STORED`);

export const numberGramsIndexName = (g: number): string => `call_legs_g${g}_number_grams`;

export const numberGramsIndex = (g: number): RawBuilder<unknown> =>
  onlyIf(`EXISTS (SELECT 1 FROM information_schema.columns WHERE table_schema = current_schema()
      AND table_name = 'call_legs_g${g}' AND column_name = 'number_grams')`,
    `CREATE INDEX IF NOT EXISTS ${numberGramsIndexName(g)} ON call_legs_g${g} USING gin (number_grams)`);

/**
 * Statistics that only the query API needs, created with the generation's tables (cheap, no index build).
 * A long substring asks the index for its last characters only and checks the whole of it on `number || ''`,
 * an expression the index cannot serve (calls.repository.ts, INDEX_HINT_CHARS). Without statistics of that
 * expression the planner takes the check for very selective, and answers a substring that most legs hold
 * (`numberContains=1312555`) by reading and sorting every leg (0.9 s at a million legs) instead of walking the
 * time index for the first page (0.1 ms). ANALYZE (autovacuum's, or the bench's) fills them.
 */
export const createCallLegQueryStatistics = async (db: Executor, g: number): Promise<void> => {
  const table = sql.table(`call_legs_g${g}`);
  for (const column of ['from_number', 'to_number']) {
    await sql`CREATE STATISTICS IF NOT EXISTS ${sql.raw(`call_legs_g${g}_${column}_expr`)} ON (${sql.ref(column)} || '') FROM ${table}`.execute(db);
  }
};
