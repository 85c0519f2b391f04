import { sql, type Kysely } from 'kysely';

const BEFORE = 'call_leg_hourly|call_provider_hourly)(_g';
const AFTER = 'call_leg_hourly|call_provider_hourly|call_provider_daily)(_g';

/**
 * Projection version 5 adds a read model, the daily rollup (`call_provider_daily`, `call_provider_daily_g<N>`).
 * `ledger_apply_roles()` passes the read models an owner made before the roles existed to `ledger_projector` by
 * name. The function is restated from its own stored definition with the daily rollup among those names (the rest
 * stays exactly as 20261201000400 made it) and run again, so that a daily rollup made by the owner is the
 * projector's too. Read models the projector makes are its own already.
 */
const rewrite = (from: string, to: string) => sql`
  DO $do$
  DECLARE d text;
  BEGIN
    d := pg_get_functiondef('ledger_apply_roles()'::regprocedure);
    IF position(${sql.lit(from)} IN d) = 0 THEN
      RAISE EXCEPTION 'ledger_apply_roles() no longer lists the read models as expected';
    END IF;
    EXECUTE replace(d, ${sql.lit(from)}, ${sql.lit(to)});
  END $do$`;

export async function up(db: Kysely<any>): Promise<void> {
  await rewrite(BEFORE, AFTER).execute(db);
  await sql`SELECT ledger_apply_roles()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await rewrite(AFTER, BEFORE).execute(db);
}
