import { sql } from 'kysely';
import type { Database } from '../../db/src/index.js';

const ARGS_22 =
  'text[], bytea[], bytea[], bytea[], text[], text[], text[], text[], text[], timestamptz[], text[], text[], timestamptz[], int[], text[], uuid[], text[], text[], text[], timestamptz[], text[], smallint';

/**
 * Today's writer (EventStoreRepository.appendBatch) passes the receipts' account keys as a 23rd argument of
 * `ledger_append` (migration 20261204000100), which the functions before it did not take. A test that writes with it
 * to a store migrated back to before that creates this shim: 23 arguments, calling the 22-argument function without
 * the keys. Drop it before migrating up again (the migration makes the real 23-argument function).
 */
export const legacyAppendShim = async (db: Database, action: 'create' | 'drop'): Promise<void> => {
  if (action === 'drop') return void (await sql.raw(`DROP FUNCTION ledger_append(${ARGS_22}, text[])`).execute(db));
  const args = Array.from({ length: 22 }, (_, i) => `$${i + 1}`).join(', ');
  await sql`
    DO $do$
    BEGIN
      EXECUTE format('CREATE FUNCTION ledger_append(%s, text[]) RETURNS %s LANGUAGE sql AS %L',
        ${sql.lit(ARGS_22)}, pg_get_function_result(${sql.lit(`ledger_append(${ARGS_22})`)}::regprocedure), ${sql.lit(`SELECT * FROM ledger_append(${args})`)});
    END $do$`.execute(db);
};
