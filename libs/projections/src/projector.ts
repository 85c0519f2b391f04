import { EventEmitter } from 'node:events';
import { sql, type Transaction } from 'kysely';
import pg from 'pg';
import type { Database, DB } from '@lib/db';
import { EVENTS_CHANNEL } from '@lib/event-store';
import { headPosition, readAfter, START, type Cursor } from './event-reader.js';
import type { ProjectionDefinition } from './projection.js';

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
}

const MAX_POSITION = '9223372036854775807';

const lockKey = (name: string) => sql`hashtext(${`ledger-projection:${name}`})`;

/**
 * Runs projections off the event store by a commit-safe cursor. Each batch runs in one transaction holding
 * the projection's advisory lock, writes the read model and moves the checkpoint together, so several
 * instances can run side by side and every event is applied exactly once. Woken by appends in this process,
 * by LISTEN/NOTIFY from others, and by a poll as the fallback. A failing projection backs off on its own.
 */
export class Projector {
  private readonly signal = new EventEmitter();
  private running = false;
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
        void this.rebuild(p.name).catch((err) => this.log('error', `rebuild of ${p.name} failed: ${(err as Error).message}`));
      }
    }
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.listen();
    for (const p of this.projections) this.loops.push(this.loop(p));
  }

  async stop(): Promise<void> {
    this.running = false;
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
        await p.handle(trx, events, row.generation);
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
    await Promise.all(targets.map((p) => this.rebuildOne(p)));
  }

  private rebuildOne(p: ProjectionDefinition): Promise<void> {
    const running = this.rebuilding.get(p.name);
    if (running) return running.promise;
    const entry = { generation: 0, cursor: START, promise: Promise.resolve() };
    entry.promise = (async () => {
      const cp = await sql<{ generation: number }>`SELECT generation FROM projection_checkpoints WHERE name = ${p.name}`.execute(this.db);
      const current = cp.rows[0]?.generation ?? 1;
      const g = current + 1;
      entry.generation = g;
      await p.dropGeneration(this.db, g);
      await p.createGeneration(this.db, g);
      await sql`UPDATE projection_checkpoints SET state = 'rebuilding', updated_at = now() WHERE name = ${p.name}`.execute(this.db);
      if (p.bulkLoad) {
        // Every transaction below the current xmin has finished, so that part of the store is fixed: the
        // projection folds it its own way, and the commit-order replay resumes from the first xid at or above.
        const b = await sql<{ xmin: string }>`SELECT pg_snapshot_xmin(pg_current_snapshot())::text AS xmin`.execute(this.db);
        const xmin = b.rows[0]!.xmin;
        await p.bulkLoad(this.db, g, xmin);
        entry.cursor = { xid: (BigInt(xmin) - 1n).toString(), position: MAX_POSITION };
      }
      for (;;) {
        const done = await this.db.transaction().execute(async (trx) => {
          const { events, next } = await readAfter(trx, entry.cursor, this.batchSize * 5);
          if (events.length > 0) await p.handle(trx, events, g);
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
          await p.handle(trx, events, g);
          entry.cursor = next;
        }
        await p.publish(trx, g);
        await sql`
          UPDATE projection_checkpoints SET generation = ${g}, version = ${p.version}, last_xid = ${entry.cursor.xid}::xid8,
            last_position = ${entry.cursor.position}::bigint, state = 'running', last_error = NULL, failing_position = NULL, updated_at = now()
          WHERE name = ${p.name}`.execute(trx);
        await p.dropGeneration(trx, current);
      });
      this.log('log', `projection ${p.name}: rebuilt into generation ${g}`);
    })().finally(() => this.rebuilding.delete(p.name));
    this.rebuilding.set(p.name, entry);
    return entry.promise;
  }

  async status(): Promise<ProjectionStatus[]> {
    const head = await headPosition(this.db);
    const rows = await sql<{
      name: string; version: number; generation: number; last_xid: string; last_position: string; state: ProjectionStatus['state'];
      last_error: string | null; failing_position: string | null; behind: string; oldest: Date | null;
    }>`
      SELECT c.name, c.version, c.generation, c.last_xid::text, c.last_position::text, c.state, c.last_error,
        c.failing_position::text,
        (SELECT count(*) FROM events e WHERE (e.transaction_id, e.global_position) > (c.last_xid, c.last_position))::text AS behind,
        (SELECT min(e.recorded_at) FROM events e WHERE (e.transaction_id, e.global_position) > (c.last_xid, c.last_position)) AS oldest
      FROM projection_checkpoints c WHERE c.name = ANY (${this.projections.map((p) => p.name)}::text[]) ORDER BY c.name`.execute(this.db);
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
