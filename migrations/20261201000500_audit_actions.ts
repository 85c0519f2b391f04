import { sql, type Kysely } from 'kysely';

/**
 * Who did what with an API key: imports and admin actions, by the key's configured name (or a fingerprint of a
 * plain key), never the key itself. Append-only like the store: an actor must not be able to erase its trace.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE audit_actions (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      at timestamptz NOT NULL DEFAULT now(),
      key_name text NOT NULL,
      action text NOT NULL,
      details jsonb NOT NULL DEFAULT '{}'
    )`.execute(db);
  await sql`CREATE INDEX audit_actions_at ON audit_actions (at DESC)`.execute(db);
  await sql`
    CREATE TRIGGER audit_actions_append_only BEFORE UPDATE OR DELETE ON audit_actions
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()`.execute(db);
  await sql`
    CREATE TRIGGER audit_actions_no_truncate BEFORE TRUNCATE ON audit_actions
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()`.execute(db);
  // The service records actors as ledger_app (migration 20261201000400): it may add rows, never change them.
  await sql`
    DO $$ BEGIN
      IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ledger_app') THEN GRANT INSERT ON audit_actions TO ledger_app; END IF;
    END $$`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP TABLE audit_actions`.execute(db);
}
