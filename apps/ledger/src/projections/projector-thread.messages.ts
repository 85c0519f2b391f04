import type { ProjectionStatus } from '@lib/projections';

/** What the service hands the projector's worker thread when it starts it (structured-cloned). */
export interface ProjectorWorkerData {
  /** The projector role's connection string: the thread opens a pool of its own (and its LISTEN connection). */
  url: string;
  /** Names of the projections to run (the thread maps them to its own copies of the definitions). */
  projections: string[];
  gatherMs: number;
  connectMs: number;
  poolSize: number;
  /** The thread's nice value (LEDGER_PROJECTOR_THREAD_NICE); 0 leaves it at the process's. */
  nice: number;
  /** Read-your-writes waiters already there when this thread starts (a restart while requests wait). */
  holds: number;
}

export type ProjectorCall = { method: 'rebuild'; name?: string } | { method: 'status' } | { method: 'metrics' };

/** The service's event loop → the projector thread. */
export type ToProjectorThread =
  | { type: 'wake' }
  | { type: 'hold' }
  | { type: 'release' }
  | ({ type: 'call'; id: number } & ProjectorCall)
  | { type: 'stop' };

export type ProjectorCallResult = void | ProjectionStatus[] | string;

/** The projector thread → the service's event loop. */
export type FromProjectorThread =
  | { type: 'ready' }
  | { type: 'applied'; projection: string; events: number }
  | { type: 'log'; level: 'log' | 'warn' | 'error'; message: string }
  | { type: 'reply'; id: number; ok: true; value: ProjectorCallResult }
  | { type: 'reply'; id: number; ok: false; error: string };
