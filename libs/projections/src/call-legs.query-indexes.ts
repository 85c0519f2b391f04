import { sql, type RawBuilder } from 'kysely';
import type { Executor } from './projection.js';

/**
 * Number substring search (`numberContains`, `from=*…*`): one trigram GIN index over both columns serves a
 * LIKE '%…%' on either, and their OR as a BitmapOr, instead of reading every leg. Without pg_trgm (the
 * migration only warns when it cannot create it) the statement does nothing and the search still answers, by
 * scanning. A rebuild's bulk load creates it after the rows, like the other query indexes (call-legs/schema.ts):
 * a GIN index maintained row by row would dominate the load.
 */
export const numbersTrgmIndex = (g: number): RawBuilder<unknown> =>
  sql.raw(`DO $do$ BEGIN
    IF EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
      EXECUTE 'CREATE INDEX IF NOT EXISTS call_legs_g${g}_numbers_trgm ON call_legs_g${g} USING gin (from_number gin_trgm_ops, to_number gin_trgm_ops)';
    END IF;
  END $do$`);

export const numbersTrgmIndexName = (g: number): string => `call_legs_g${g}_numbers_trgm`;

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
