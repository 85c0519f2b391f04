import { sql, type Kysely } from 'kysely';

/**
 * Events a projection could not apply even alone (a value its read model cannot hold, stored before the
 * ledger bounded it): parked here and skipped, so one event cannot stop the projection for good. Kept per
 * generation: a rebuild (new code) tries every event again, and the switch-over drops the old generation's rows.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE projection_parked (
      projection text NOT NULL,
      generation integer NOT NULL,
      position bigint NOT NULL,
      event_id text NOT NULL,
      stream_name text NOT NULL,
      event_type text NOT NULL,
      error text NOT NULL,
      parked_at timestamptz NOT NULL DEFAULT now(),
      PRIMARY KEY (projection, generation, position)
    )`.execute(db);
  await sql`CREATE INDEX projection_parked_stream ON projection_parked (stream_name)`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP TABLE projection_parked`.execute(db);
}
