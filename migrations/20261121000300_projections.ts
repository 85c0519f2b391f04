import { sql, type Kysely } from 'kysely';

/**
 * Projection bookkeeping and the first read models. Read models live in generation tables
 * (`call_legs_g<N>`, `recordings_g<N>`) behind views (`call_legs`, `recordings`): a rebuild fills the next
 * generation while queries keep reading the current one, then one transaction repoints the views.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE projection_checkpoints (
      name text PRIMARY KEY,
      version integer NOT NULL,
      generation integer NOT NULL DEFAULT 1,
      last_xid xid8 NOT NULL DEFAULT '0',
      last_position bigint NOT NULL DEFAULT 0,
      state text NOT NULL DEFAULT 'running' CHECK (state IN ('running', 'rebuilding', 'failing')),
      last_error text,
      failing_position bigint,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  await sql`
    CREATE TABLE projection_failures (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      projection text NOT NULL,
      position bigint,
      error text NOT NULL,
      failed_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);
  // Parent-side events that name a child (DialCompleted, ChildLegDialed): the projection looks them up by child.
  await sql`CREATE INDEX events_child_leg ON events ((data->>'childLegId')) WHERE data ? 'childLegId'`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP INDEX events_child_leg`.execute(db);
  await sql`DROP TABLE projection_failures`.execute(db);
  await sql`DROP TABLE projection_checkpoints`.execute(db);
}
