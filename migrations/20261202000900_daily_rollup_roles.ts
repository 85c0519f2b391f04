import { sql, type Kysely } from 'kysely';

const BEFORE = 'call_leg_hourly|call_provider_hourly)(_g';
const AFTER = 'call_leg_hourly|call_provider_hourly|call_provider_daily)(_g';

/**
 * `ledger_apply_roles()` hands the read models that the owner made (a store used before the roles existed) to
 * the projector by a list of table names. The daily rollup (`call_provider_daily_g<n>`, projection version 5)
 * came after that list was written, so a store whose owner had built a generation with it left the projector
 * unable to write it ("permission denied"). The function is restated from its own definition with the name
 * added, rather than copied here whole: everything else in it stays exactly as migration 20261201000400 made it.
 */
const rewrite = (from: string, to: string) => sql`
  DO $do$
  DECLARE d text;
  BEGIN
    IF to_regprocedure('ledger_apply_roles()') IS NULL THEN RETURN; END IF;
    d := pg_get_functiondef('ledger_apply_roles()'::regprocedure);
    EXECUTE replace(d, ${sql.lit(from)}, ${sql.lit(to)});
    IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ledger_projector') THEN
      PERFORM ledger_apply_roles();
    END IF;
  END $do$`;

export async function up(db: Kysely<any>): Promise<void> {
  await rewrite(BEFORE, AFTER).execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await rewrite(AFTER, BEFORE).execute(db);
}
