import { sql, type Kysely } from 'kysely';

/**
 * Erasure that reaches the archive and races with ingest (issue 16, second session; README "Erasure and its proof").
 * Adds one function; changes no table and no other function (ledger_append and ledger_erase are untouched).
 *
 * - `ledger_erasure_fence()`: `LOCK TABLE webhook_receipts, events IN SHARE ROW EXCLUSIVE MODE` for the rest of the
 *   calling transaction. Appends (ROW EXCLUSIVE, taken by their first INSERT, before any stream row lock) wait from
 *   there to the erasure's commit, and the lock is granted only once the appends already running have committed, so
 *   the erasure's second pass reads every delivery that committed while its first pass ran. Readers (ACCESS SHARE)
 *   are not blocked. SECURITY DEFINER because the service's role has no UPDATE right on the tables, which LOCK in
 *   this mode requires; EXECUTE for ledger_app only.
 */
export async function up(db: Kysely<any>): Promise<void> {
  const {
    rows: [{ schema }],
  } = await sql<{ schema: string }>`SELECT current_schema() AS schema`.execute(db);
  await sql`
    CREATE FUNCTION ledger_erasure_fence() RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = ${sql.id(schema)}, pg_temp AS $fn$
    BEGIN
      LOCK TABLE webhook_receipts, events IN SHARE ROW EXCLUSIVE MODE;
    END
    $fn$`.execute(db);
  await sql`REVOKE ALL ON FUNCTION ledger_erasure_fence() FROM PUBLIC`.execute(db);
  await sql`
    DO $$
    BEGIN
      IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ledger_app') THEN
        GRANT EXECUTE ON FUNCTION ledger_erasure_fence() TO ledger_app;
      END IF;
    END $$`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP FUNCTION ledger_erasure_fence()`.execute(db);
}
