import { Histogram, type Registry } from 'prom-client';

/**
 * Metrics the projector itself produces. They live in the registry of the thread the projector runs on: the
 * service's (LEDGER_PROJECTOR=inline) or the worker thread's, whose exposition /metrics appends to its own.
 */
export const createProjectorMetrics = (registry: Registry) => ({
  batchSeconds: new Histogram({
    name: 'ledger_projection_batch_seconds',
    help: 'Live projector batches: one transaction (lock, read, fold, checkpoint) from its start to its commit',
    labelNames: ['projection'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  }),
});

export type ProjectorMetrics = ReturnType<typeof createProjectorMetrics>;
