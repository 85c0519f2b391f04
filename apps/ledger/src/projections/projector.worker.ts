import { readlinkSync } from 'node:fs';
import { setPriority } from 'node:os';
import { parentPort, workerData } from 'node:worker_threads';
import { Registry } from 'prom-client';
import { BACKGROUND_TIMEOUTS, createDatabase } from '@lib/db';
import { callLegsProjection, Projector, type ProjectionDefinition } from '@lib/projections';
import type { FromProjectorThread, ProjectorCall, ProjectorCallResult, ProjectorWorkerData, ToProjectorThread } from './projector-thread.messages.js';
import { createProjectorMetrics } from './projector.metrics.js';

/**
 * The projector's worker thread (LEDGER_PROJECTOR=worker, started by projector.thread.ts): the same Projector as
 * inline, on a pool of its own as the projector role, so that its folds (tens to hundreds of milliseconds of
 * JavaScript under load) do not hold up the event loop that answers webhooks. It talks to the service only by
 * messages: wake-ups and read-your-writes holds in; applied batches, logs and call replies out.
 */
if (!parentPort) throw new Error('projector.worker runs as a worker thread (started by projector.thread.ts)');
const port = parentPort;
const data = workerData as ProjectorWorkerData;
const post = (message: FromProjectorThread) => port.postMessage(message);
const log = (level: 'log' | 'warn' | 'error', message: string) => post({ type: 'log', level, message });

/**
 * Linux schedules threads, and a thread's nice value is its own: this one yields the cores to the thread that
 * answers webhooks (and to PostgreSQL) when they are short, and has them when they are not.
 */
const lowerPriority = (nice: number) => {
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').at(-1));
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, nice);
  } catch {
    /* not Linux: the thread keeps the process's priority */
  }
};
if (data.nice > 0) lowerPriority(data.nice);

const known: ProjectionDefinition[] = [callLegsProjection];
const registry = new Registry();
const metrics = createProjectorMetrics(registry);
const { db } = createDatabase(data.url, data.poolSize, { ...BACKGROUND_TIMEOUTS, connectMs: data.connectMs, applicationName: 'call-ledger-projector' });
const projector = new Projector(
  db,
  known.filter((p) => data.projections.includes(p.name)),
  {
    listenUrl: data.url,
    gatherMs: data.gatherMs,
    // Inline, ingest's load on the shared loop stretched every batch (and so the next one's gathered events); here
    // nothing does, and small batches cost more per event (ingest.compare: 134 events a batch against 367 inline,
    // PostgreSQL CPU per delivery +23 %; with this, 412 and equal CPU). A half-busy thread still keeps up.
    maxBusyShare: 0.5,
    log,
    onApplied: (projection, events, seconds) => {
      metrics.batchSeconds.observe({ projection }, seconds);
      post({ type: 'applied', projection, events });
    },
  },
);

const holds: (() => void)[] = [];
for (let i = 0; i < data.holds; i++) holds.push(projector.hold());

let stopping = false;
/** Settles once the projector runs (true), or the thread was told to stop first (false). */
const started = (async () => {
  for (;;) {
    try {
      await projector.init();
      break;
    } catch (err) {
      if (stopping) return false;
      log('warn', `projector not started yet: ${(err as Error).message}`);
      await new Promise((r) => setTimeout(r, 2000));
    }
    if (stopping) return false;
  }
  if (stopping) return false;
  projector.start();
  post({ type: 'ready' });
  return true;
})();

const call = async (c: ProjectorCall): Promise<ProjectorCallResult> => {
  switch (c.method) {
    case 'rebuild':
      if (!(await started)) throw new Error('the projector thread is stopping');
      return projector.rebuild(c.name);
    case 'status':
      return projector.status();
    case 'metrics':
      return registry.metrics();
  }
};

const stop = async () => {
  stopping = true;
  await projector.stop();
  await started;
  await db.destroy();
  // Ends the thread only (process.exit in a worker stops that worker), with the code the service reads as clean.
  process.exit(0);
};

port.on('message', (m: ToProjectorThread) => {
  switch (m.type) {
    case 'wake':
      projector.wake();
      return;
    case 'hold':
      holds.push(projector.hold());
      return;
    case 'release':
      holds.pop()?.();
      return;
    case 'call':
      call(m).then(
        (value) => post({ type: 'reply', id: m.id, ok: true, value }),
        (err: unknown) => post({ type: 'reply', id: m.id, ok: false, error: (err as Error)?.message ?? String(err) }),
      );
      return;
    case 'stop':
      void stop();
      return;
  }
});
