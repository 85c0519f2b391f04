import { EventEmitter } from 'node:events';
import pg from 'pg';
import type { Transaction } from 'kysely';
import type { Database, DB } from '@lib/db';
import { EVENTS_CHANNEL } from '@lib/event-store';
import {
  advanceCheckpoint, checkpointStatus, insertCheckpoint, lockProjection, projectedPast, readCheckpoint, recentParked, recordFailure,
  lockProjectionBatch,
} from './checkpoints.js';
import { headPosition, readAfter, START, type Cursor } from './event-reader.js';
import { applyOrPark, type ParkingHooks } from './parking.js';
import type { ProjectionDefinition } from './projection.js';
import { rebuildUnderLock, type RebuildContext, type RebuildEntry } from './rebuild.js';

export interface ProjectorOptions {
  batchSize?: number;
  /** Fallback poll when no notification arrives. */
  pollMs?: number;
  /** Connection string for LISTEN; null disables cross-process wake-ups (polling still works). */
  listenUrl?: string | null;
  log?: (level: 'log' | 'warn' | 'error', message: string) => void;
  /**
   * Called after a live batch has committed, with the events it applied: summed over every instance it must
   * equal the number of events, which is how "exactly once" is checked from outside (a metric). `seconds`: the
   * batch's transaction, from its start to its commit.
   */
  onApplied?: (projection: string, events: number, seconds: number) => void;
  /** Called when an event is parked (before its transaction commits; not wired to a metric yet). */
  onParked?: (projection: string, position: string) => void;
  /** How long a rebuild waits between tries for the rebuild lock another instance holds. */
  rebuildLockPollMs?: number;
  /**
   * Live batches start at most this often (ms) while nobody waits for one: a wake-up sooner after the last batch
   * began waits out the rest of the window, so that under load one transaction folds every group commit of the
   * window instead of one transaction per commit, each with its lock, checkpoint read and write, and WAL flush,
   * run just as the next deliveries arrive. The first wake-up after a quiet spell runs at once, a read-your-writes
   * waiter in this process (`waitFor`) ends the wait, and a full batch (catching up) is followed at once. 0: none.
   */
  gatherMs?: number;
  /**
   * Under load, live batches keep the projector busy at most this share of the time: the next one starts no sooner
   * than the last one's duration divided by it after the last one began (and gatherMs still applies). 1 (default):
   * no such limit. A projector on a thread of its own sets it below 1: nothing else slows its loop down, so without
   * it its batches stay small and their fixed cost (lock, checkpoint, commit, each leg's refold) is paid more often
   * than on a loop shared with ingest. The same waiters and stops end it as end the gathering window.
   */
  maxBusyShare?: number;
  /**
   * Called when the live loop falls behind (a full batch: more events wait, as when an import lands or after an
   * outage) and when it has caught up again (a batch that was not full, or the projector stopping). The service
   * bounds its heap's growth meanwhile (heap-growing.runtime.ts): full batches promote garbage fastest.
   */
  onBehind?: (behind: boolean) => void;
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


/** How many of the positions its last batches read the projector remembers per projection (onNotification). */
const SEEN_POSITIONS = 20_000;

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
  private readonly rebuilding = new Map<string, RebuildEntry>();
  private readonly batchSize: number;
  private readonly pollMs: number;
  private readonly log: NonNullable<ProjectorOptions['log']>;
  private readonly hooks: ParkingHooks;
  private readonly gatherMs: number;
  private readonly maxBusyShare: number;
  /** Read-your-writes waiters in this process: while there are any, no batch waits for its window. */
  private waiters = 0;
  /** The projections whose last live batch was full (onBehind). */
  private readonly behind = new Set<string>();
  /** Per projection, the positions its recent batches read (newest last, at most SEEN_POSITIONS): see onNotification. */
  private readonly seen = new Map<string, Set<string>>();

  constructor(
    private readonly db: Database,
    readonly projections: readonly ProjectionDefinition[],
    private readonly options: ProjectorOptions = {},
  ) {
    this.batchSize = options.batchSize ?? 1000;
    this.pollMs = options.pollMs ?? 500;
    this.log = options.log ?? (() => undefined);
    this.hooks = { log: this.log, onParked: options.onParked };
    this.gatherMs = options.gatherMs ?? 0;
    this.maxBusyShare = Math.min(1, Math.max(0.05, options.maxBusyShare ?? 1));
    this.signal.setMaxListeners(100);
  }

  /** Creates missing checkpoints and generations; a version bump starts a blue-green rebuild. */
  async init(): Promise<void> {
    for (const p of this.projections) {
      const cp = await this.db.transaction().execute(async (trx) => {
        await lockProjection(trx, p.name);
        const existing = await readCheckpoint(trx, p.name);
        if (existing) return existing;
        await p.createGeneration(trx, 1);
        await p.publish(trx, 1);
        await insertCheckpoint(trx, p.name, p.version);
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
        client.on('notification', (msg) => this.onNotification(msg.payload));
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

  /**
   * An append's NOTIFY carries the highest position it wrote. When every projection has read that position already,
   * the notification is the echo of a commit whose events a batch has in hand: mostly this process's own appends,
   * whose in-process wake-up ran a batch before their NOTIFY arrived, so that the wake-up it counts ran another
   * batch, empty, a transaction of three statements (bench/profile-notes.md). A batch that read the position but not
   * the rest of its transaction was full, and a full batch is followed at once anyway; one that failed is retried.
   */
  private onNotification(payload: string | undefined): void {
    if (payload && this.projections.length > 0 && this.projections.every((p) => this.seen.get(p.name)?.has(payload))) return;
    this.wake();
  }

  private noteRead(name: string, events: readonly { position: string }[]): void {
    let seen = this.seen.get(name);
    if (!seen) this.seen.set(name, (seen = new Set()));
    for (const e of events) seen.add(e.position);
    // Oldest first: a NOTIFY arrives within moments of its commit, long before SEEN_POSITIONS more events are read.
    for (const p of seen) {
      if (seen.size <= SEEN_POSITIONS) break;
      seen.delete(p);
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

  /**
   * Waits until `since` + gatherMs (or + the last batch's duration / maxBusyShare, when longer), unless a
   * read-your-writes waiter is there or arrives, or the projector stops.
   */
  private gather(since: number, lastDuration: number): Promise<void> {
    const left = since + Math.max(this.gatherMs, lastDuration / this.maxBusyShare) - performance.now();
    if (left <= 0 || this.waiters > 0 || !this.running) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.signal.off('urgent', done);
        this.signal.off('stopped', done);
        resolve();
      };
      const timer = setTimeout(done, left);
      this.signal.once('urgent', done);
      this.signal.once('stopped', done);
    });
  }

  private async loop(p: ProjectionDefinition): Promise<void> {
    let backoff = 0;
    let lastStart = Number.NEGATIVE_INFINITY;
    let lastDuration = 0;
    let full = false;
    while (this.running) {
      try {
        if (!full) await this.gather(lastStart, lastDuration);
        lastStart = performance.now();
        const seen = this.wakes;
        const n = await this.runOnce(p);
        lastDuration = n > 0 ? performance.now() - lastStart : 0;
        full = n >= this.batchSize;
        this.setBehind(p.name, full);
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
    this.setBehind(p.name, false);
  }

  private setBehind(name: string, behind: boolean): void {
    const was = this.behind.size > 0;
    if (behind) this.behind.add(name);
    else this.behind.delete(name);
    if (was !== this.behind.size > 0) this.options.onBehind?.(!was);
  }

  /** One batch: returns how many events were applied (0 when another instance holds the lock). */
  async runOnce(p: ProjectionDefinition): Promise<number> {
    const began = performance.now();
    let generation: number | undefined;
    let done: { g: number; next: Cursor } | undefined;
    const applied = await this.db.transaction().execute(async (trx) => {
      if (!(await lockProjectionBatch(trx, p.name))) return 0;
      const row = await readCheckpoint(trx, p.name);
      if (!row) throw new Error(`projection ${p.name} has no checkpoint (init not run)`);
      // A generation built by another version (a version bump, its blue-green rebuild under way) is not written by
      // this code: its tables may lack what this version writes. The rebuild replays everything after its own
      // snapshot, so nothing is skipped; readers see the old generation, unchanged, until the switch.
      if (row.version !== p.version) return 0;
      const from = { xid: row.last_xid, position: row.last_position };
      const { events, next } = await readAfter(trx, from, this.batchSize);
      if (events.length === 0) return 0;
      this.noteRead(p.name, events);
      generation = row.generation;
      const live = { from, behind: events.length >= this.batchSize };
      try {
        await applyOrPark(this.hooks, trx, p, row.generation, events, (t, ev, upTo) => p.handle(t, ev, row.generation, upTo, live));
      } catch (err) {
        throw Object.assign(err as Error, { position: events[0]!.position });
      }
      await advanceCheckpoint(trx, p.name, next);
      done = { g: row.generation, next };
      return events.length;
    }).catch((err: unknown) => {
      if (generation !== undefined) p.abandoned?.(generation);
      throw err;
    });
    if (done) p.committed?.(done.g, done.next);
    if (applied > 0) {
      this.options.onApplied?.(p.name, applied, (performance.now() - began) / 1000);
      this.appliedElsewhere();
    }
    return applied;
  }

  private async recordFailure(p: ProjectionDefinition, err: unknown): Promise<void> {
    const position = (err as { position?: string }).position ?? null;
    await recordFailure(this.db, p.name, position, (err as Error).message ?? String(err));
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

  /** One rebuild per projection in this process; rebuild.ts keeps it to one across instances. */
  private rebuildOne(p: ProjectionDefinition, reason: 'version' | 'request'): Promise<void> {
    const running = this.rebuilding.get(p.name);
    if (running) return running.promise;
    const entry: RebuildEntry = { generation: 0, cursor: START, promise: Promise.resolve() };
    const ctx: RebuildContext = {
      ...this.hooks,
      db: this.db,
      batchSize: this.batchSize,
      lockPollMs: this.options.rebuildLockPollMs ?? 250,
      stopping: () => this.stopping,
    };
    entry.promise = rebuildUnderLock(ctx, p, entry, reason).finally(() => this.rebuilding.delete(p.name));
    this.rebuilding.set(p.name, entry);
    return entry.promise;
  }

  async status(): Promise<ProjectionStatus[]> {
    const head = await headPosition(this.db);
    const names = this.projections.map((p) => p.name);
    const rows = await checkpointStatus(this.db, names);
    const recent = await recentParked(this.db, names);
    return rows.map((r) => {
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
        parked: recent
          .filter((k) => k.projection === r.name)
          .map((k) => ({ position: k.position, eventId: k.event_id, stream: k.stream_name, type: k.event_type, error: k.error, parkedAt: k.parked_at.toISOString() })),
      };
    });
  }

  /**
   * True once every projection has applied every event at or below `position`, as `on` sees it: the projector's
   * own database by default, or a read replica (whose checkpoints and read models are replayed together, so its
   * checkpoint says how far its read models are).
   */
  async hasPassed(position: string, on: Database = this.db): Promise<boolean> {
    return projectedPast(on, this.projections.map((p) => p.name), position);
  }

  /**
   * A batch has committed (here, or in the projector's worker thread when this object only answers for it):
   * read-your-writes waiters re-check now instead of at their next poll.
   */
  appliedElsewhere(): void {
    this.signal.emit('applied');
  }

  /**
   * A read-your-writes waiter is there (here, or in the thread that serves requests while this projector runs in
   * a worker thread): until the returned release is called, no live batch waits out its gathering window.
   */
  hold(): () => void {
    this.waiters += 1;
    this.signal.emit('urgent');
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.waiters -= 1;
    };
  }

  /**
   * Read-your-writes: waits until `position` is projected (as `on` sees it), or `timeoutMs` passes. Woken by
   * this process's batches; the 25 ms poll covers batches that another instance applies, and a replica's replay.
   */
  async waitFor(position: string, timeoutMs: number, on: Database = this.db): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    if (await this.hasPassed(position, on)) return true;
    // Someone is waiting: the live loop does not wait out its gathering window (gatherMs).
    const release = this.hold();
    try {
      for (;;) {
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
        if (await this.hasPassed(position, on)) return true;
      }
    } finally {
      release();
    }
  }
}

export type { Transaction, DB };
