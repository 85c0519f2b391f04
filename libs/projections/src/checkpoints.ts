import { sql, type Kysely, type Transaction } from 'kysely';
import type { DB } from '@lib/db';
import type { LedgerEvent } from '@lib/ledger';
import type { Cursor } from './event-reader.js';
import type { Executor } from './projection.js';
import { withProjectionTables } from './read-models.types.js';
import { eventKeyAt, eventsAfter, pendingAtOrBelow } from '@lib/event-store';

/**
 * The projections' bookkeeping: checkpoints (one row per projection: version, generation, commit-order cursor,
 * state), failures and parked events. Every statement on those tables is here.
 */

export const lockKey = (name: string) => sql`hashtext(${`ledger-projection:${name}`})`;
/** Held for a whole rebuild on a connection of its own; distinct from the batch lock, which the live loop takes. */
export const rebuildLockKey = (name: string) => sql`hashtext(${`ledger-projection-rebuild:${name}`})`;

export interface CheckpointRow {
  last_xid: string;
  last_position: string;
  generation: number;
  version: number;
  state: string;
}

/** Blocks until this transaction holds the projection's batch lock. */
export const lockProjection = async (trx: Transaction<DB>, name: string): Promise<void> => {
  await sql`SELECT pg_advisory_xact_lock(${lockKey(name)})`.execute(trx);
};

/**
 * The batch lock if free (false when another instance is applying a batch of this projection), for one live
 * batch whose commit then does not wait for its WAL flush (`synchronous_commit = off`, this transaction only). A projection is derived: a batch lost in a crash takes its
 * checkpoint with it (same transaction), so it is applied again from the store, whose commits stay synchronous;
 * and the fold cache's tags are random, so a lost row never matches a cached state. What it saves is a WAL
 * flush per batch, which the deliveries' commits, which hold up providers and tee calls, would queue behind.
 */
export const lockProjectionBatch = async (trx: Transaction<DB>, name: string): Promise<boolean> => {
  const locked = await sql<{ ok: boolean }>`SELECT pg_try_advisory_xact_lock(${lockKey(name)}) AS ok, set_config('synchronous_commit', 'off', true)`.execute(trx);
  return locked.rows[0]?.ok ?? false;
};

export const readCheckpoint = async (db: Executor, name: string): Promise<CheckpointRow | undefined> =>
  withProjectionTables(db as Kysely<DB>)
    .selectFrom('projection_checkpoints')
    .select([
      sql<string>`last_xid::text`.as('last_xid'),
      sql<string>`last_position::text`.as('last_position'),
      'generation',
      'version',
      'state',
    ])
    .where('name', '=', name)
    .executeTakeFirst();

export const insertCheckpoint = async (trx: Transaction<DB>, name: string, version: number): Promise<void> => {
  await withProjectionTables(trx).insertInto('projection_checkpoints').values({ name, version, generation: 1 }).execute();
};

/** Moves the cursor past a batch (in the batch's transaction) and clears a failure the batch has just got past. */
export const advanceCheckpoint = async (trx: Transaction<DB>, name: string, next: Cursor): Promise<void> => {
  await sql`
    UPDATE projection_checkpoints SET last_xid = ${next.xid}::xid8, last_position = ${next.position}::bigint,
      state = CASE WHEN state = 'failing' THEN 'running' ELSE state END,
      last_error = CASE WHEN state = 'failing' THEN NULL ELSE last_error END,
      failing_position = CASE WHEN state = 'failing' THEN NULL ELSE failing_position END,
      updated_at = now()
    WHERE name = ${name}`.execute(trx);
};

export const recordFailure = async (db: Kysely<DB>, name: string, position: string | null, message: string): Promise<void> => {
  const t = withProjectionTables(db);
  await t.insertInto('projection_failures').values({ projection: name, position, error: message }).execute();
  await t
    .updateTable('projection_checkpoints')
    .set({ state: 'failing', last_error: message, failing_position: position, updated_at: sql`now()` })
    .where('name', '=', name)
    .execute();
};

export const markRebuilding = async (db: Kysely<DB>, name: string): Promise<void> => {
  await withProjectionTables(db).updateTable('projection_checkpoints').set({ state: 'rebuilding', updated_at: sql`now()` }).where('name', '=', name).execute();
};

/** The switch-over's checkpoint: the new generation and version, at the cursor the rebuild reached. */
export const switchCheckpoint = async (trx: Transaction<DB>, name: string, g: number, version: number, cursor: Cursor): Promise<void> => {
  await sql`
    UPDATE projection_checkpoints SET generation = ${g}, version = ${version}, last_xid = ${cursor.xid}::xid8,
      last_position = ${cursor.position}::bigint, state = 'running', last_error = NULL, failing_position = NULL, updated_at = now()
    WHERE name = ${name}`.execute(trx);
};

export const parkEvent = async (trx: Transaction<DB>, name: string, g: number, event: LedgerEvent, message: string): Promise<void> => {
  const key = await eventKeyAt(trx, event.position);
  if (!key) return;
  await sql`
    INSERT INTO projection_parked (projection, generation, position, event_id, stream_name, event_type, error)
    VALUES (${name}, ${g}, ${event.position}::bigint, ${key.eventId}, ${key.streamName}, ${key.type}, ${message})
    ON CONFLICT DO NOTHING`.execute(trx);
};

/** Parked rows of generation `g` only, or (keepOnly) of every generation but `g`. */
export const clearParked = async (db: Executor, name: string, g: number, which: 'of' | 'all-but'): Promise<void> => {
  await withProjectionTables(db as Kysely<DB>)
    .deleteFrom('projection_parked')
    .where('projection', '=', name)
    .where('generation', which === 'of' ? '=' : '<>', g)
    .execute();
};

export interface CheckpointStatusRow {
  name: string;
  version: number;
  generation: number;
  last_xid: string;
  last_position: string;
  state: 'running' | 'rebuilding' | 'failing';
  last_error: string | null;
  failing_position: string | null;
  behind: string;
  oldest: Date | null;
  parked: string;
}

export const checkpointStatus = async (db: Kysely<DB>, names: readonly string[]): Promise<CheckpointStatusRow[]> => {
  const rows = await sql<Omit<CheckpointStatusRow, 'behind' | 'oldest'>>`
    SELECT c.name, c.version, c.generation, c.last_xid::text, c.last_position::text, c.state, c.last_error,
      c.failing_position::text,
      (SELECT count(*) FROM projection_parked k WHERE k.projection = c.name AND k.generation = c.generation)::text AS parked
    FROM projection_checkpoints c WHERE c.name = ANY (${names}::text[]) ORDER BY c.name`.execute(db);
  return Promise.all(
    rows.rows.map(async (r) => {
      const after = await eventsAfter(db, { xid: r.last_xid, position: r.last_position });
      return { ...r, behind: after.count, oldest: after.oldest };
    }),
  );
};

export interface ParkedRow {
  projection: string;
  position: string;
  event_id: string;
  stream_name: string;
  event_type: string;
  error: string;
  parked_at: Date;
}

/** The newest 20 parked events of each projection's current generation. */
export const recentParked = async (db: Kysely<DB>, names: readonly string[]): Promise<ParkedRow[]> => {
  const rows = await sql<ParkedRow>`
    SELECT k.projection, k.position::text, k.event_id, k.stream_name, k.event_type, k.error, k.parked_at
    FROM projection_checkpoints c
    CROSS JOIN LATERAL (SELECT * FROM projection_parked k WHERE k.projection = c.name AND k.generation = c.generation
      ORDER BY k.position DESC LIMIT 20) k
    WHERE c.name = ANY (${names}::text[])`.execute(db);
  return rows.rows;
};

/** True once every named projection has applied every event at or below `position`. */
export const projectedPast = async (db: Kysely<DB>, names: readonly string[], position: string): Promise<boolean> => {
  // A position not yet in the store (gaps aside, beyond the head) cannot have been projected.
  const cursors = await sql<{ xid: string; position: string }>`
    SELECT last_xid::text AS xid, last_position::text AS position FROM projection_checkpoints WHERE name = ANY (${names}::text[])`.execute(db);
  return !(await pendingAtOrBelow(db, position, cursors.rows));
};
