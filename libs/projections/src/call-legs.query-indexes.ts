import { sql } from 'kysely';
import type { Executor } from './projection.js';

/**
 * Indexes of a call-legs generation that only the query API needs (GET /v1/calls and its export and analytics
 * filters), kept apart from the tables they index so that the projection's own file stays about projecting.
 * Created with the generation's tables, before it is filled.
 */
export const createCallLegQueryIndexes = async (db: Executor, g: number): Promise<void> => {
  const table = sql.table(`call_legs_g${g}`);
  // Number substring search (`numberContains`, `from=*…*`): one trigram GIN index over both columns serves a
  // LIKE '%…%' on either, and their OR as a BitmapOr, instead of reading every leg. Without pg_trgm (the
  // migration only warns when it cannot create it) the search still answers, by scanning.
  const trgm = await sql<{ ok: boolean }>`SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') AS ok`.execute(db);
  if (trgm.rows[0]?.ok) {
    await sql`CREATE INDEX IF NOT EXISTS ${sql.raw(`call_legs_g${g}_numbers_trgm`)} ON ${table} USING gin (from_number gin_trgm_ops, to_number gin_trgm_ops)`.execute(db);
  }
  // A long substring asks the index for its last characters only and checks the whole of it on `number || ''`,
  // an expression the index cannot serve (calls.repository.ts, INDEX_HINT_CHARS). Without statistics of that
  // expression the planner takes the check for very selective, and answers a substring that most legs hold
  // (`numberContains=1312555`) by reading and sorting every leg (0.9 s at a million legs) instead of walking the
  // time index for the first page (0.1 ms). ANALYZE (autovacuum's, or the bench's) fills them.
  for (const column of ['from_number', 'to_number']) {
    await sql`CREATE STATISTICS IF NOT EXISTS ${sql.raw(`call_legs_g${g}_${column}_expr`)} ON (${sql.ref(column)} || '') FROM ${table}`.execute(db);
  }
};
