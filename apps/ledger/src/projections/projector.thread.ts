import { createRequire } from 'node:module';
import { dirname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { Database } from '@lib/db';
import { Projector, type ProjectionDefinition, type ProjectionStatus } from '@lib/projections';
import type { FromProjectorThread, ProjectorCall, ProjectorCallResult, ProjectorWorkerData, ToProjectorThread } from './projector-thread.messages.js';

export interface ProjectorThreadOptions {
  /** The projector role's connection string, for the thread's own pool and LISTEN connection. */
  url: string;
  gatherMs: number;
  connectMs: number;
  poolSize?: number;
  /** The thread's nice value on Linux (0: the process's). */
  nice?: number;
  log: (level: 'log' | 'warn' | 'error', message: string) => void;
  /** A batch committed in the thread (counted in the service's registry, like the inline projector's). */
  onApplied?: (projection: string, events: number) => void;
  /** The thread ended without being asked to (the restart is already scheduled). */
  onCrash?: () => void;
  /** The thread's projector runs (again). */
  onReady?: () => void;
  /** First delay before a restart; doubles on each crash that follows a short life, up to restartMaxMs. */
  restartBaseMs?: number;
  restartMaxMs?: number;
  /** How long stop() waits for the thread to finish its batch and close its pool before terminating it. */
  stopTimeoutMs?: number;
}

export type ProjectorThreadState = 'idle' | 'starting' | 'running' | 'restarting' | 'stopped';

export interface ProjectorThreadHealth {
  state: ProjectorThreadState;
  /** Times the thread ended unasked and was started again. */
  restarts: number;
  /** Why it last ended unasked (null: never). */
  lastExit: string | null;
}

/** A crash after a life this long is taken as a new incident: the restart delay starts from the base again. */
const STABLE_MS = 30_000;

/**
 * The worker's entry: compiled JavaScript beside this file in dist/; under Vitest, which runs these sources as
 * TypeScript, the .ts source loaded through tsx's loader (registered inside the thread, which Node does not
 * inherit from the test runner).
 */
const workerEntry = (): { file: URL; typescript: boolean } => {
  const typescript = import.meta.url.endsWith('.ts');
  return { file: new URL(`./projector.worker.${typescript ? 'ts' : 'js'}`, import.meta.url), typescript };
};

const startWorker = (workerData: ProjectorWorkerData): Worker => {
  const entry = workerEntry();
  if (!entry.typescript) return new Worker(entry.file, { workerData, name: 'projector' });
  // Its ESM entry, as its package.json exports it to `import` (require.resolve would give the CommonJS one).
  const require = createRequire(import.meta.url);
  const manifest = require.resolve('tsx/package.json');
  const exported = (require(manifest) as { exports: Record<string, { import: { default: string } }> }).exports['./esm/api']!.import.default;
  const tsx = pathToFileURL(resolve(dirname(manifest), exported)).href;
  const boot = `import(${JSON.stringify(tsx)}).then(({ register }) => { register(); return import(${JSON.stringify(entry.file.href)}); });`;
  return new Worker(boot, { eval: true, workerData, name: 'projector' });
};

/**
 * LEDGER_PROJECTOR=worker: the projector runs in a worker thread (projector.worker.ts) and this object stands in
 * for it on the service's event loop, under the same DI token, so that ingest's wake-ups, read-your-writes waits,
 * status, rebuilds and shutdown keep their callers. Reads that decide read-your-writes (hasPassed) run here, on
 * the service's projector pool: they are one small query, and the waiter is here. The thread is restarted with a
 * backoff when it dies; ingest does not depend on it.
 */
export class ThreadedProjector extends Projector {
  private worker: Worker | null = null;
  private state: ProjectorThreadState = 'idle';
  private restarts = 0;
  private lastExit: string | null = null;
  private lastError: string | null = null;
  private backoffMs = 0;
  private spawnedAt = 0;
  private restartTimer: NodeJS.Timeout | null = null;
  /** Read-your-writes waiters on this event loop: the thread does not gather while there are any. */
  private holds = 0;
  private wakePending = false;
  private nextCallId = 0;
  private readonly calls = new Map<number, { resolve: (v: ProjectorCallResult) => void; reject: (e: Error) => void }>();
  /** Calls made while no thread runs (between a crash and its restart): sent to the next one. */
  private outbox: ToProjectorThread[] = [];
  private exited: Promise<void> = Promise.resolve();
  private runningWaiters: (() => void)[] = [];

  constructor(
    db: Database,
    projections: readonly ProjectionDefinition[],
    private readonly thread: ProjectorThreadOptions,
  ) {
    super(db, projections, { log: thread.log });
  }

  /** The thread initialises the checkpoints itself (retrying while the database is unavailable). */
  override async init(): Promise<void> {}

  override start(): void {
    if (this.state !== 'idle') return;
    this.spawn();
  }

  override async stop(): Promise<void> {
    const previous = this.state;
    this.state = 'stopped';
    for (const resolve of this.runningWaiters.splice(0)) resolve();
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = null;
    const worker = this.worker;
    if (!worker || previous === 'stopped') return this.exited;
    worker.postMessage({ type: 'stop' } satisfies ToProjectorThread);
    const timeoutMs = this.thread.stopTimeoutMs ?? 15_000;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), timeoutMs)));
    if ((await Promise.race([this.exited, late])) === 'late') {
      this.thread.log('warn', `the projector thread did not stop within ${timeoutMs} ms; terminating it`);
      await worker.terminate();
      await this.exited;
    }
    clearTimeout(timer);
  }

  /** Many appends resolve in one turn of the event loop (a group commit): one message wakes the thread for all. */
  override wake(): void {
    if (this.wakePending) return;
    this.wakePending = true;
    queueMicrotask(() => {
      this.wakePending = false;
      this.worker?.postMessage({ type: 'wake' } satisfies ToProjectorThread);
    });
  }

  override hold(): () => void {
    this.holds += 1;
    this.worker?.postMessage({ type: 'hold' } satisfies ToProjectorThread);
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.holds -= 1;
      this.worker?.postMessage({ type: 'release' } satisfies ToProjectorThread);
    };
  }

  override async rebuild(name?: string): Promise<void> {
    if (name && !this.projections.some((p) => p.name === name)) throw new Error(`unknown projection "${name}"`);
    await this.call({ method: 'rebuild', name });
  }

  /** The thread's view (it knows the rebuilds in progress); from the database alone while no thread runs. */
  override async status(): Promise<ProjectionStatus[]> {
    if (this.state !== 'running') return super.status();
    try {
      return (await this.call({ method: 'status' })) as ProjectionStatus[];
    } catch (err) {
      if (this.state === 'running') throw err;
      return super.status();
    }
  }

  /** The thread's own metrics in the Prometheus text format; empty while it does not run or does not answer. */
  async metricsText(timeoutMs = 2_000): Promise<string> {
    if (this.state !== 'running') return '';
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<string>((resolve) => (timer = setTimeout(() => resolve(''), timeoutMs)));
    try {
      return await Promise.race([this.call({ method: 'metrics' }).then((v) => v as string, () => ''), late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Settles once a thread's projector runs (its checkpoints initialised, its loops started), or on stop(). */
  whenRunning(): Promise<void> {
    if (this.state === 'running' || this.state === 'stopped') return Promise.resolve();
    return new Promise((resolve) => this.runningWaiters.push(resolve));
  }

  health(): ProjectorThreadHealth {
    return { state: this.state, restarts: this.restarts, lastExit: this.lastExit };
  }

  /** The running thread (tests end it to check the restart). */
  get currentThread(): Worker | null {
    return this.worker;
  }

  private call(c: ProjectorCall): Promise<ProjectorCallResult> {
    if (this.state === 'stopped') return Promise.reject(new Error('the projector thread is stopped'));
    const id = ++this.nextCallId;
    return new Promise((resolve, reject) => {
      this.calls.set(id, { resolve, reject });
      const message: ToProjectorThread = { type: 'call', id, ...c };
      if (this.worker) this.worker.postMessage(message);
      else this.outbox.push(message);
    });
  }

  private spawn(): void {
    this.restartTimer = null;
    this.state = 'starting';
    this.spawnedAt = performance.now();
    this.lastError = null;
    const worker = startWorker({
      url: this.thread.url,
      projections: this.projections.map((p) => p.name),
      gatherMs: this.thread.gatherMs,
      connectMs: this.thread.connectMs,
      poolSize: this.thread.poolSize ?? 4,
      nice: this.thread.nice ?? 0,
      holds: this.holds,
    });
    this.worker = worker;
    let exit!: () => void;
    this.exited = new Promise<void>((resolve) => (exit = resolve));
    worker.on('message', (m: FromProjectorThread) => this.onMessage(m));
    worker.on('error', (err) => {
      this.lastError = err.message;
      this.thread.log('error', `projector thread failed: ${err.stack ?? err.message}`);
    });
    worker.on('exit', (code) => {
      this.onExit(worker, code);
      exit();
    });
    for (const message of this.outbox.splice(0)) worker.postMessage(message);
  }

  private onMessage(m: FromProjectorThread): void {
    switch (m.type) {
      case 'ready':
        if (this.state === 'starting') this.state = 'running';
        for (const resolve of this.runningWaiters.splice(0)) resolve();
        this.thread.onReady?.();
        return;
      case 'applied':
        this.thread.onApplied?.(m.projection, m.events);
        this.appliedElsewhere();
        return;
      case 'log':
        this.thread.log(m.level, m.message);
        return;
      case 'reply': {
        const pending = this.calls.get(m.id);
        if (!pending) return;
        this.calls.delete(m.id);
        if (m.ok) pending.resolve(m.value);
        else pending.reject(new Error(m.error));
        return;
      }
    }
  }

  private onExit(worker: Worker, code: number): void {
    if (this.worker !== worker) return;
    this.worker = null;
    for (const { reject } of this.calls.values()) reject(new Error('the projector thread ended before it answered'));
    this.calls.clear();
    if (this.state === 'stopped') return;
    this.restarts += 1;
    this.lastExit = `exit code ${code}${this.lastError ? `: ${this.lastError}` : ''}`;
    const base = this.thread.restartBaseMs ?? 200;
    this.backoffMs = performance.now() - this.spawnedAt > STABLE_MS || this.backoffMs === 0 ? base : Math.min(this.backoffMs * 2, this.thread.restartMaxMs ?? 30_000);
    this.state = 'restarting';
    this.thread.log('error', `the projector thread ended (${this.lastExit}); restarting it in ${this.backoffMs} ms (ingest goes on meanwhile)`);
    this.thread.onCrash?.();
    this.restartTimer = setTimeout(() => this.spawn(), this.backoffMs);
    this.restartTimer.unref();
  }
}
