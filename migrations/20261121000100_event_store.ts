import { sql, type Kysely } from 'kysely';

/**
 * The append-only core: verbatim webhook receipts, the events translated from them, and the stream heads
 * that hand out stream versions and chain hashes. Receipts and events refuse UPDATE, DELETE and TRUNCATE.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE webhook_receipts (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      provider text NOT NULL,
      -- sha256 of the raw body: "same provider, same bytes" is the same delivery, decided by the unique index.
      body_sha256 bytea NOT NULL,
      body bytea NOT NULL,
      content_type text,
      path text NOT NULL,
      query text NOT NULL,
      headers jsonb NOT NULL,
      remote_addr text,
      received_at timestamptz NOT NULL,
      source text NOT NULL CHECK (source IN ('live', 'import')),
      signature_status text NOT NULL CHECK (signature_status IN ('verified', 'unverified', 'not-checked')),
      signature_timestamp timestamptz,
      recorded_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT webhook_receipts_dedupe UNIQUE (provider, body_sha256)
    )`.execute(db);

  await sql`
    CREATE TABLE streams (
      stream_name text PRIMARY KEY,
      version integer NOT NULL DEFAULT 0,
      last_hash bytea
    )`.execute(db);

  await sql`
    CREATE TABLE events (
      global_position bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      -- Commit-order cursor: readers page by (transaction_id, global_position) below the oldest open xact.
      transaction_id xid8 NOT NULL DEFAULT pg_current_xact_id(),
      event_id uuid NOT NULL UNIQUE,
      stream_name text NOT NULL,
      stream_version integer NOT NULL,
      type text NOT NULL,
      schema_version smallint NOT NULL DEFAULT 1,
      data jsonb NOT NULL,
      metadata jsonb NOT NULL,
      receipt_id bigint NOT NULL REFERENCES webhook_receipts (id),
      occurred_at timestamptz,
      received_at timestamptz NOT NULL,
      prev_hash bytea,
      hash bytea NOT NULL,
      recorded_at timestamptz NOT NULL DEFAULT now(),
      CONSTRAINT events_stream_version UNIQUE (stream_name, stream_version)
    )`.execute(db);
  await sql`CREATE INDEX events_commit_order ON events (transaction_id, global_position)`.execute(db);
  await sql`CREATE INDEX events_receipt ON events (receipt_id)`.execute(db);

  await sql`
    CREATE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      RAISE EXCEPTION 'ledger table % is append-only: % refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'insufficient_privilege';
    END $$`.execute(db);
  for (const table of ['events', 'webhook_receipts']) {
    await sql`
      CREATE TRIGGER ${sql.raw(`${table}_append_only`)} BEFORE UPDATE OR DELETE ON ${sql.table(table)}
      FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()`.execute(db);
    await sql`
      CREATE TRIGGER ${sql.raw(`${table}_no_truncate`)} BEFORE TRUNCATE ON ${sql.table(table)}
      FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()`.execute(db);
  }
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP TABLE events`.execute(db);
  await sql`DROP TABLE streams`.execute(db);
  await sql`DROP TABLE webhook_receipts`.execute(db);
  await sql`DROP FUNCTION ledger_refuse_change()`.execute(db);
}
