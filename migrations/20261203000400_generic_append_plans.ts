import { sql, type Kysely } from 'kysely';
import { rewriteFunction } from './rewrite-function.js';

const BEFORE = 'SECURITY DEFINER SET search_path = %I, pg_temp';
const AFTER = 'SECURITY DEFINER SET search_path = %I, pg_temp SET plan_cache_mode = force_generic_plan';

/**
 * `ledger_append` plans its statements once per session (issue 14). Its statements take their rows from
 * `unnest` of the array arguments; under the default plan_cache_mode a plan of a PL/pgSQL statement is rebuilt
 * for the values of each call (a custom plan) while the planner estimates it cheaper than the generic one,
 * which for statements over arrays of a few elements it keeps doing. Planning the function's statements was
 * about a fifth of the PostgreSQL CPU of a call of one to four deliveries (the naive path, eight appenders):
 * `BATCH=1|4|16 node dist/bench/append-overhead.probe.js`, rounds alternated on a shared machine, 1,071 → 879,
 * 1,540 → 1,220 and 2,545 → 2,327 µs of backend CPU per call; per delivery the same within the noise at 64 and
 * 2,000 deliveries a call (the generic plans hash-join the arrays, linear in the batch), about 5 % more at 500.
 *
 * What changes relative to the current definition (20261202000800_get_deliveries): not its text. One setting,
 * `SET plan_cache_mode = force_generic_plan`, on every `ledger_append` signature, restored when the call
 * returns (it does not leak into the caller's transaction). `CREATE OR REPLACE FUNCTION` drops such settings,
 * so it is set by `ledger_apply_roles()`, which every migration that replaces `ledger_append` calls already
 * (that function's stored definition is rewritten here, as 20261202000400 did); a test checks it is there.
 */

/** Directly as well: without the roles (an owner that may not create them) ledger_apply_roles() stops early. */
const alterAppends = (action: string) => sql`
  DO $do$
  DECLARE r record;
  BEGIN
    FOR r IN SELECT p.oid::regprocedure AS fn FROM pg_proc p WHERE p.proname = 'ledger_append' AND p.pronamespace = current_schema()::regnamespace LOOP
      EXECUTE format('ALTER FUNCTION %s ' || ${sql.lit(action)}, r.fn);
    END LOOP;
  END $do$`;

export async function up(db: Kysely<any>): Promise<void> {
  await rewriteFunction('ledger_apply_roles()', [[BEFORE, AFTER]]).execute(db);
  await alterAppends('SET plan_cache_mode = force_generic_plan').execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await rewriteFunction('ledger_apply_roles()', [[AFTER, BEFORE]]).execute(db);
  await alterAppends('RESET plan_cache_mode').execute(db);
}
