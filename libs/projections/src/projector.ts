import { EventEmitter } from 'node:events';
import { sql, type Transaction } from 'kysely';
import pg from 'pg';
import type { Database, DB } from '@lib/db';
import type { LedgerEvent } from '@lib/ledger';
import { EVENTS_CHANNEL } from '@lib/event-store';
import { cursorOf, headPosition, readAfter, START, type Cursor } from './event-reader.js';
import { isDataError, type Isolate, type ProjectionDefinition } from './projection.js';

export interface ProjectorOptions {
  batchSize?: number;
  /** Fallback poll when no notification arrives. */
  pollMs?: number;
  /** Connection string for LISTEN; null disables cross-process wake-ups (polling still works). */
  listenUrl?: string | null;
  log?: (level: 'log' | 'warn' | 'error', message: string) => void;
  /**
   * Called after a live batch has committed, with the events it applied: summed over every instance it must
   * equal the number of events, which is how "exactly once" is checked from outside (a metric).
   */
  onApplied?: (projection: string, events: number) => void;
  /** Called when an event is parked (before its transaction commits; not wired to a metric yet). */
  onParked?: (projection: string, position: string) => void;
  /** How long a rebuild waits between tries for the rebuild lock another instance holds. */
  rebuildLockPollMs?: number;
}

export interface ParkedEvent {
  position: string;
  eventId: string;
  stream: string;
  type: string;
  error: string;
  parkedAt: string;
}

export interface ProjectionStatus {
  name: string;
  version: number;
  generation: number;
  checkpoint: { xid: string; position: string };
  head: string;
  lagEvents: number;
  lagSeconds: number;
  state: 'running' | 'rebuilding' | 'failing';
  lastError: string | null;
  failingPosition: string | null;
  rebuild: { generation: number; position: string } | null;
  /** Events of the current generation that could not be applied even alone, skipped (projection_parked). */
  parkedEvents: number;
  /** The newest of them, at most 20. */
  parked: ParkedEvent[];
}

const MAX_POSITION = '9223372036854775807';

const lockKey = (name: string) => sql`hashtext(${`ledger-projection:${name}`})`;
/** Held for a whole rebuild on a connection of its own; distinct from the batch lock, which the live loop takes. */
const rebuildLockKey = (name: string) => sql`hashtext(${`ledger-projection-rebuild:${name}`})`;
const truncate = (text: string, max = 2000) => (text.length > max ? `${text.slice(0, max)}…` : text);

/**
 * Runs projections off the event store by a commit-safe cursor. Each batch runs in one transaction holding
 * the projection's advisory lock, writes the read model and moves the checkpoint together, so several
 * instances can run side by side and every event is applied exactly once. Woken by appends in this process,
 * by LISTEN/NOTIFY from others, and by a poll as the fallback. A failing projection backs off on its own.
 */
export class Projector {
  private readonly signal = new EventEmitter();
  private running = false;
  private stopping = false;
  /** Counts wake-ups, so that one arriving while a batch runs is not lost to the sleep that follows it. */
  private wakes = 0;
  private listener: pg.Client | null = null;
  private readonly loops: Promise<void>[] = [];
  private readonly rebuilding = new Map<string, { generation: number; cursor: Cursor; promise: Promise<void> }>();
  private readonly batchSize: number;
  private readonly pollMs: number;
  private readonly log: NonNullable<ProjectorOptions['log']>;

  constructor(
    private readonly db: Database,
    readonly projections: readonly ProjectionDefinition[],
    private readonly options: ProjectorOptions = {},
  ) {
    this.batchSize = options.batchSize ?? 1000;
    this.pollMs = options.pollMs ?? 500;
    this.log = options.log ?? (() => undefined);
    this.signal.setMaxListeners(100);
  }

  /** Creates missing checkpoints and generations; a version bump starts a blue-green rebuild. */
  async init(): Promise<void> {
    for (const p of this.projections) {
      const cp = await this.db.transaction().execute(async (trx) => {
        await sql`SELECT pg_advisory_xact_lock(${lockKey(p.name)})`.execute(trx);
        const existing = await sql<{ version: number; generation: number }>`
          SELECT version, generation FROM projection_checkpoints WHERE name = ${p.name}`.execute(trx);
        if (existing.rows[0]) return existing.rows[0];
        await p.createGeneration(trx, 1);
        await p.publish(trx, 1);
        await sql`INSERT INTO projection_checkpoints (name, version, generation) VALUES (${p.name}, ${p.version}, 1)`.execute(trx);
        return { version: p.version, generation: 1 };
      });
      if (cp.version !== p.version) {
        this.log('log', `projection ${p.name}: version ${cp.version} -> ${p.version}, rebuilding side by side`);
        void this.rebuildOne(p, 'version').catch((err) => this.log('error', `rebuild of ${p.name} failed: ${(err as Error).message}`));
      }
    }
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    this.stopping = false;
    void this.listen();
    for (const p of this.projections) this.loops.push(this.loop(p));
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopping = true;
    this.signal.emit('wake');
    this.signal.emit('stopped');
    await Promise.allSettled(this.loops);
    await Promise.allSettled([...this.rebuilding.values()].map((r) => r.promise));
    await this.listener?.end().catch(() => undefined);
    this.listener = null;
  }

  /** In-process wake-up after an append. */
  wake(): void {
    this.wakes += 1;
    this.signal.emit('wake');
  }

  private async listen(): Promise<void> {
    const url = this.options.listenUrl;
    if (!url) return;
    while (this.running) {
      const client = new pg.Client({ connectionString: url, application_name: 'call-ledger-projector-listen' });
      // A server shutdown makes the client emit 'error' more than once (the server's 57P01, then the closed
      // socket): a listener that stays for the client's whole life, because an unhandled 'error' event kills
      // the process (found by the database-outage chaos test).
      client.on('error', () => undefined);
      try {
        await client.connect();
        client.on('notification', () => this.wake());
        await client.query(`LISTEN ${EVENTS_CHANNEL}`);
        this.listener = client;
        await new Promise<void>((resolve) => {
          client.once('error', () => resolve());
          client.once('end', () => resolve());
          this.signal.once('stopped', () => resolve());
        });
      } catch {
        /* database unavailable: polling carries on, and we retry */
      }
      await client.end().catch(() => undefined);
      if (this.running) await this.sleep(1000);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      const onWake = () => done();
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.signal.once('wake', onWake);
      setTimeout(() => this.signal.off('wake', onWake), ms + 1).unref();
    });
  }

  private async loop(p: ProjectionDefinition): Promise<void> {
    let backoff = 0;
    while (this.running) {
      try {
        const seen = this.wakes;
        const n = await this.runOnce(p);
        backoff = 0;
        // An append that committed while this batch ran may be above its snapshot: look again at once.
        if (n < this.batchSize && this.wakes === seen) await this.sleep(this.pollMs);
      } catch (err) {
        backoff = Math.min(backoff ? backoff * 2 : 200, 30_000);
        await this.recordFailure(p, err).catch(() => undefined);
        this.log('warn', `projection ${p.name} failed, retrying in ${backoff} ms: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, backoff));
      }
    }
  }

  /** One batch: returns how many events were applied (0 when another instance holds the lock). */
  async runOnce(p: ProjectionDefinition): Promise<number> {
    const applied = await this.db.transaction().execute(async (trx) => {
      const locked = await sql<{ ok: boolean }>`SELECT pg_try_advisory_xact_lock(${lockKey(p.name)}) AS ok`.execute(trx);
      if (!locked.rows[0]?.ok) return 0;
      const cp = await sql<{ last_xid: string; last_position: string; generation: number; state: string }>`
        SELECT last_xid::text, last_position::text, generation, state FROM projection_checkpoints WHERE name = ${p.name}`.execute(trx);
      const row = cp.rows[0];
      if (!row) throw new Error(`projection ${p.name} has no checkpoint (init not run)`);
      const { events, next } = await readAfter(trx, { xid: row.last_xid, position: row.last_position }, this.batchSize);
      if (events.length === 0) return 0;
      try {
        await this.applyOrPark(trx, p, row.generation, events, (t, ev, upTo) => p.handle(t, ev, row.generation, upTo));
      } catch (err) {
        throw Object.assign(err as Error, { position: events[0]!.position });
      }
      await sql`
        UPDATE projection_checkpoints SET last_xid = ${next.xid}::xid8, last_position = ${next.position}::bigint,
          state = CASE WHEN state = 'failing' THEN 'running' ELSE state END,
          last_error = CASE WHEN state = 'failing' THEN NULL ELSE last_error END,
          failing_position = CASE WHEN state = 'failing' THEN NULL ELSE failing_position END,
          updated_at = now()
        WHERE name = ${p.name}`.execute(trx);
      return events.length;
    });
    if (applied > 0) {
      this.options.onApplied?.(p.name, applied);
      // Read-your-writes waiters re-check as soon as a batch commits instead of at their next poll.
      this.signal.emit('applied');
    }
    return applied;
  }

  /**
   * Applies the batch in a savepoint. When it fails on the data, the savepoint is rolled back and the batch is
   * halved until the culprits stand alone; each is parked, the others applied, and the caller moves the
   * checkpoint past them all. The halves are applied in commit order, and a batch's effect does not depend on
   * how the events are cut into batches (the live loop cuts them anywhere), so the result is that of the batch
   * without its culprits. A transient error is thrown as before: the whole transaction rolls back and retries.
   * Returns how many events were parked.
   */
  private async applyOrPark(
    trx: Transaction<DB>,
    p: ProjectionDefinition,
    g: number,
    events: readonly LedgerEvent[],
    apply: (trx: Transaction<DB>, events: readonly LedgerEvent[], upTo?: Cursor) => Promise<void>,
    isolating = false,
  ): Promise<number> {
    if (events.length === 0) return 0;
    await sql`SAVEPOINT projector_apply`.execute(trx);
    let failure: unknown;
    try {
      await apply(trx, events, isolating ? cursorOf(events.at(-1)!) : undefined);
      await sql`RELEASE SAVEPOINT projector_apply`.execute(trx);
      return 0;
    } catch (err) {
      if (!isDataError(err)) throw err;
      failure = err;
    }
    await sql`ROLLBACK TO SAVEPOINT projector_apply`.execute(trx);
    await sql`RELEASE SAVEPOINT projector_apply`.execute(trx);
    // A lone event is judged with its predecessors only before it is blamed: a later event of its leg, already
    // committed but not yet applied, may be the culprit.
    if (events.length === 1 && !isolating) return this.applyOrPark(trx, p, g, events, apply, true);
    if (events.length === 1) {
      await this.park(trx, p, g, events[0]!, failure);
      return 1;
    }
    const mid = Math.ceil(events.length / 2);
    return (await this.applyOrPark(trx, p, g, events.slice(0, mid), apply, true)) + (await this.applyOrPark(trx, p, g, events.slice(mid), apply, true));
  }

  private async park(trx: Transaction<DB>, p: ProjectionDefinition, g: number, event: LedgerEvent, err: unknown): Promise<void> {
    const message = truncate((err as Error).message ?? String(err));
    await sql`
      INSERT INTO projection_parked (projection, generation, position, event_id, stream_name, event_type, error)
      SELECT ${p.name}, ${g}, e.global_position, e.event_id::text, e.stream_name, e.type, ${message}
      FROM events e WHERE e.global_position = ${event.position}::bigint
      ON CONFLICT DO NOTHING`.execute(trx);
    this.log('warn', `projection ${p.name}: parked event ${event.position} (${event.type}) of generation ${g}: ${message}`);
    this.options.onParked?.(p.name, event.position);
  }

  private async recordFailure(p: ProjectionDefinition, err: unknown): Promise<void> {
    const position = (err as { position?: string }).position ?? null;
    const message = (err as Error).message ?? String(err);
    await sql`INSERT INTO projection_failures (projection, position, error) VALUES (${p.name}, ${position}::bigint, ${message})`.execute(this.db);
    await sql`UPDATE projection_checkpoints SET state = 'failing', last_error = ${message}, failing_position = ${position}::bigint, updated_at = now()
      WHERE name = ${p.name}`.execute(this.db);
  }

  /** Drains every projection (tests, CLI). */
  async runUntilCaughtUp(): Promise<void> {
    for (const p of this.projections) while ((await this.runOnce(p)) > 0);
  }

  /**
   * Blue-green rebuild: replays every event into the next generation while the current one keeps serving
   * (and keeps being updated). At the end, under the projection's lock, the last events are applied and the
   * views, checkpoint and generation switch in one transaction.
   */
  async rebuild(name?: string): Promise<void> {
    const targets = this.projections.filter((p) => !name || p.name === name);
    if (name && targets.length === 0) throw new Error(`unknown projection "${name}"`);
    await Promise.all(targets.map((p) => this.rebuildOne(p, 'request')));
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
  private rebuildOne(p: ProjectionDefinition, reason: 'version' | 'request'): Promise<void> {
    const running = this.rebuilding.get(p.name);
    if (running) return running.promise;
    const entry = { generation: 0, cursor: START, promise: Promise.resolve() };
    entry.promise = (async () => {
      const seen = await sql<{ generation: number }>`SELECT generation FROM projection_checkpoints WHERE name = ${p.name}`.execute(this.db);
      await this.db.connection().execute(async (conn) => {
        for (let tries = 0; ; tries++) {
          const got = await sql<{ ok: boolean }>`SELECT pg_try_advisory_lock(${rebuildLockKey(p.name)}) AS ok`.execute(conn);
          if (got.rows[0]?.ok) break;
          if (this.stopping) return;
          if (tries === 0) this.log('log', `projection ${p.name}: another instance is rebuilding it, waiting for its rebuild lock`);
          await new Promise((r) => setTimeout(r, this.options.rebuildLockPollMs ?? 250));
        }
        try {
          const cp = await sql<{ generation: number; version: number }>`
            SELECT generation, version FROM projection_checkpoints WHERE name = ${p.name}`.execute(conn);
          const now = cp.rows[0];
          if (now && (reason === 'version' ? now.version === p.version : now.generation !== seen.rows[0]?.generation)) {
            this.log('log', `projection ${p.name}: another instance rebuilt it meanwhile (generation ${now.generation}), skipping`);
            return;
          }
          await this.rebuildLocked(p, entry, now?.generation ?? 1);
        } finally {
          await sql`SELECT pg_advisory_unlock(${rebuildLockKey(p.name)})`.execute(conn).catch(() => undefined);
        }
      });
    })().finally(() => this.rebuilding.delete(p.name));
    this.rebuilding.set(p.name, entry);
    return entry.promise;
  }

  private async rebuildLocked(p: ProjectionDefinition, entry: { generation: number; cursor: Cursor }, current: number): Promise<void> {
    const g = current + 1;
    entry.generation = g;
    await p.dropGeneration(this.db, g);
    await sql`DELETE FROM projection_parked WHERE projection = ${p.name} AND generation = ${g}`.execute(this.db);
    await p.createGeneration(this.db, g);
    await sql`UPDATE projection_checkpoints SET state = 'rebuilding', updated_at = now() WHERE name = ${p.name}`.execute(this.db);
    if (p.bulkLoad) {
      // Every transaction below the current xmin has finished, so that part of the store is fixed: the
      // projection folds it its own way, and the commit-order replay resumes from the first xid at or above.
      const b = await sql<{ xmin: string }>`SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin`.execute(this.db);
      const xmin = b.rows[0]!.xmin;
      const isolate: Isolate = (trx, events, apply) => this.applyOrPark(trx, p, g, events, apply);
      await p.bulkLoad(this.db, g, xmin, isolate);
      entry.cursor = { xid: (BigInt(xmin) - 1n).toString(), position: MAX_POSITION };
    }
    // The catch-up writes only generation g, which no live loop reads or writes before the switch below, and
    // the rebuild lock keeps any other rebuild out of it: so it needs no batch lock until the switch.
    for (;;) {
      const done = await this.db.transaction().execute(async (trx) => {
        const { events, next } = await readAfter(trx, entry.cursor, this.batchSize * 5);
        await this.applyOrPark(trx, p, g, events, (t, ev, upTo) => p.handle(t, ev, g, upTo));
        entry.cursor = next;
        return events.length < this.batchSize * 5;
      });
      if (done) break;
    }
    await this.db.transaction().execute(async (trx) => {
      await sql`SELECT pg_advisory_xact_lock(${lockKey(p.name)})`.execute(trx);
      for (;;) {
        const { events, next } = await readAfter(trx, entry.cursor, this.batchSize * 5);
        if (events.length === 0) break;
        await this.applyOrPark(trx, p, g, events, (t, ev, upTo) => p.handle(t, ev, g, upTo));
        entry.cursor = next;
      }
      await p.publish(trx, g);
      await sql`
        UPDATE projection_checkpoints SET generation = ${g}, version = ${p.version}, last_xid = ${entry.cursor.xid}::xid8,
          last_position = ${entry.cursor.position}::bigint, state = 'running', last_error = NULL, failing_position = NULL, updated_at = now()
        WHERE name = ${p.name}`.execute(trx);
      await p.dropGeneration(trx, current);
      await sql`DELETE FROM projection_parked WHERE projection = ${p.name} AND generation <> ${g}`.execute(trx);
    });
    this.log('log', `projection ${p.name}: rebuilt into generation ${g}`);
  }

  async status(): Promise<ProjectionStatus[]> {
    const head = await headPosition(this.db);
    const rows = await sql<{
      name: string; version: number; generation: number; last_xid: string; last_position: string; state: ProjectionStatus['state'];
      last_error: string | null; failing_position: string | null; behind: string; oldest: Date | null; parked: string;
    }>`
      SELECT c.name, c.version, c.generation, c.last_xid::text, c.last_position::text, c.state, c.last_error,
        c.failing_position::text,
        (SELECT count(*) FROM events e WHERE (e.transaction_id, e.global_position) > (c.last_xid, c.last_position))::text AS behind,
        (SELECT min(e.recorded_at) FROM events e WHERE (e.transaction_id, e.global_position) > (c.last_xid, c.last_position)) AS oldest,
        (SELECT count(*) FROM projection_parked k WHERE k.projection = c.name AND k.generation = c.generation)::text AS parked
      FROM projection_checkpoints c WHERE c.name = ANY (${this.projections.map((p) => p.name)}::text[]) ORDER BY c.name`.execute(this.db);
    const recent = await sql<{
      projection: string; position: string; event_id: string; stream_name: string; event_type: string; error: string; parked_at: Date;
    }>`
      SELECT k.projection, k.position::text, k.event_id, k.stream_name, k.event_type, k.error, k.parked_at
      FROM projection_checkpoints c
      CROSS JOIN LATERAL (SELECT * FROM projection_parked k WHERE k.projection = c.name AND k.generation = c.generation
        ORDER BY k.position DESC LIMIT 20) k
      WHERE c.name = ANY (${this.projections.map((p) => p.name)}::text[])`.execute(this.db);
    return rows.rows.map((r) => {
      const rb = this.rebuilding.get(r.name);
      return {
        name: r.name,
        version: r.version,
        generation: r.generation,
        checkpoint: { xid: r.last_xid, position: r.last_position },
        head: head.position,
        lagEvents: Number(r.behind),
        lagSeconds: r.oldest ? Math.max(0, (Date.now() - r.oldest.getTime()) / 1000) : 0,
        state: rb ? 'rebuilding' : r.state,
        lastError: r.last_error,
        failingPosition: r.failing_position,
        rebuild: rb ? { generation: rb.generation, position: rb.cursor.position } : null,
        parkedEvents: Number(r.parked),
        parked: recent.rows
          .filter((k) => k.projection === r.name)
          .map((k) => ({ position: k.position, eventId: k.event_id, stream: k.stream_name, type: k.event_type, error: k.error, parkedAt: k.parked_at.toISOString() })),
      };
    });
  }

  /** True once every projection has applied every event at or below `position`. */
  async hasPassed(position: string): Promise<boolean> {
    // A position not yet in the store (gaps aside, beyond the head) cannot have been projected.
    const r = await sql<{ pending: boolean }>`
      SELECT NOT EXISTS (SELECT 1 FROM events WHERE global_position >= ${position}::bigint) OR EXISTS (
        SELECT 1 FROM projection_checkpoints c JOIN events e
          ON e.global_position <= ${position}::bigint AND (e.transaction_id, e.global_position) > (c.last_xid, c.last_position)
        WHERE c.name = ANY (${this.projections.map((p) => p.name)}::text[])
      ) AS pending`.execute(this.db);
    return !r.rows[0]!.pending;
  }

  /**
   * Read-your-writes: waits until `position` is projected, or `timeoutMs` passes. Woken by this process's
   * batches; the 25 ms poll covers batches that another instance applies.
   */
  async waitFor(position: string, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await this.hasPassed(position)) return true;
      const left = deadline - Date.now();
      if (left <= 0) return false;
      await new Promise<void>((resolve) => {
        const done = () => {
          clearTimeout(timer);
          this.signal.off('applied', done);
          resolve();
        };
        const timer = setTimeout(done, Math.min(25, left));
        this.signal.once('applied', done);
      });
    }
  }
}

export type { Transaction, DB };
