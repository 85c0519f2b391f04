import { sql } from 'kysely';
import type { Database } from '@lib/db';
import {
  clearParked, lockProjection, markRebuilding, readCheckpoint, rebuildLockKey, switchCheckpoint,
} from './checkpoints.js';
import { readAfter, START, type Cursor } from './event-reader.js';
import { applyOrPark, type ParkingHooks } from './parking.js';
import type { Isolate, ProjectionDefinition } from './projection.js';

const MAX_POSITION = '9223372036854775807';

/** A rebuild in progress, as the projector's status shows it. */
export interface RebuildEntry {
  generation: number;
  cursor: Cursor;
  promise: Promise<void>;
}

export interface RebuildContext extends ParkingHooks {
  db: Database;
  batchSize: number;
  lockPollMs: number;
  /** True once the projector is stopping: a rebuild still waiting for the lock gives up. */
  stopping: () => boolean;
}

/**
 * One rebuild at a time per projection across every instance: the whole rebuild holds a session-level
 * advisory lock on a connection of its own (the batch lock stays free for the live loop, which keeps
 * serving generation N meanwhile). Without it, two instances starting after a version bump both built
 * generation N+1 in the same tables, and one dropped what the other was filling. An instance that finds the
 * lock taken waits for it, then skips when the work is done: for a version bump, when the checkpoint already
 * has this version; for a request, when another rebuild finished while it waited (that one read the store
 * after the request was made).
 */
export const rebuildUnderLock = async (ctx: RebuildContext, p: ProjectionDefinition, entry: RebuildEntry, reason: 'version' | 'request'): Promise<void> => {
  const seen = await readCheckpoint(ctx.db, p.name);
  await ctx.db.connection().execute(async (conn) => {
    for (let tries = 0; ; tries++) {
      const got = await sql<{ ok: boolean }>`SELECT pg_try_advisory_lock(${rebuildLockKey(p.name)}) AS ok`.execute(conn);
      if (got.rows[0]?.ok) break;
      if (ctx.stopping()) return;
      if (tries === 0) ctx.log('log', `projection ${p.name}: another instance is rebuilding it, waiting for its rebuild lock`);
      await new Promise((r) => setTimeout(r, ctx.lockPollMs));
    }
    try {
      const now = await readCheckpoint(conn, p.name);
      if (now && (reason === 'version' ? now.version === p.version : now.generation !== seen?.generation)) {
        ctx.log('log', `projection ${p.name}: another instance rebuilt it meanwhile (generation ${now.generation}), skipping`);
        return;
      }
      await rebuildLocked(ctx, p, entry, now?.generation ?? 1);
    } finally {
      await sql`SELECT pg_advisory_unlock(${rebuildLockKey(p.name)})`.execute(conn).catch(() => undefined);
    }
  });
};

/**
 * Blue-green: replays every event into the next generation while the current one keeps serving (and keeps
 * being updated). At the end, under the projection's batch lock, the last events are applied and the views,
 * checkpoint and generation switch in one transaction.
 */
const rebuildLocked = async (ctx: RebuildContext, p: ProjectionDefinition, entry: RebuildEntry, current: number): Promise<void> => {
  const { db } = ctx;
  const chunk = ctx.batchSize * 5;
  const g = current + 1;
  entry.generation = g;
  entry.cursor = START;
  await p.dropGeneration(db, g);
  await clearParked(db, p.name, g, 'of');
  await p.createGeneration(db, g);
  await markRebuilding(db, p.name);
  if (p.bulkLoad) {
    // Every transaction below the current xmin has finished, so that part of the store is fixed: the
    // projection folds it its own way, and the commit-order replay resumes from the first xid at or above.
    const b = await sql<{ xmin: string }>`SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin`.execute(db);
    const xmin = b.rows[0]!.xmin;
    const isolate: Isolate = (trx, events, apply) => applyOrPark(ctx, trx, p, g, events, apply);
    await p.bulkLoad(db, g, xmin, isolate);
    entry.cursor = { xid: (BigInt(xmin) - 1n).toString(), position: MAX_POSITION };
  }
  // The catch-up writes only generation g, which no live loop reads or writes before the switch below, and
  // the rebuild lock keeps any other rebuild out of it: so it needs no batch lock until the switch.
  for (;;) {
    const done = await db.transaction().execute(async (trx) => {
      const { events, next } = await readAfter(trx, entry.cursor, chunk);
      await applyOrPark(ctx, trx, p, g, events, (t, ev, upTo) => p.handle(t, ev, g, upTo));
      entry.cursor = next;
      return events.length < chunk;
    });
    if (done) break;
  }
  await db.transaction().execute(async (trx) => {
    await lockProjection(trx, p.name);
    for (;;) {
      const { events, next } = await readAfter(trx, entry.cursor, chunk);
      if (events.length === 0) break;
      await applyOrPark(ctx, trx, p, g, events, (t, ev, upTo) => p.handle(t, ev, g, upTo));
      entry.cursor = next;
    }
    await p.publish(trx, g);
    await switchCheckpoint(trx, p.name, g, p.version, entry.cursor);
    await p.dropGeneration(trx, current);
    await clearParked(trx, p.name, g, 'all-but');
  });
  ctx.log('log', `projection ${p.name}: rebuilt into generation ${g}`);
};
