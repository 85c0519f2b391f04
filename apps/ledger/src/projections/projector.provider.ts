import { Logger } from '@nestjs/common';
import type { LedgerConfig } from '@lib/config';
import type { Database } from '@lib/db';
import { Projector, type ProjectionDefinition } from '@lib/projections';
import type { MetricsService } from '../metrics/metrics.service.js';
import { createProjectorMetrics } from './projector.metrics.js';
import { ThreadedProjector } from './projector.thread.js';
import { heapGrowingWhileBehind } from '../heap-growing.runtime.js';

export const PROJECTIONS = Symbol('PROJECTIONS');

const logger = new Logger('Projector');
const log = (level: 'log' | 'warn' | 'error', message: string) => (level === 'error' ? logger.error(message) : level === 'warn' ? logger.warn(message) : logger.log(message));

export const createProjector = (
  db: Database,
  projections: ProjectionDefinition[],
  listenUrl: string | null,
  onApplied?: (projection: string, events: number, seconds: number) => void,
  gatherMs = 0,
  onBehind?: (behind: boolean) => void,
): Projector => new Projector(db, projections, { listenUrl, onApplied, gatherMs, log, onBehind });

/**
 * The service's projector, as LEDGER_PROJECTOR says: `worker`, a stand-in for the projector that runs in a worker
 * thread (projector.thread.ts); `inline`, the projector itself on this event loop; `off`, one that is never
 * started (read-your-writes still waits on the checkpoints that another process moves). `listenUrl` is the
 * projector role's URL: the worker thread opens its pool with it, so without one the projector runs inline.
 */
export const createServiceProjector = (
  db: Database,
  projections: ProjectionDefinition[],
  listenUrl: string | null,
  config: LedgerConfig,
  metrics: MetricsService,
): Projector => {
  const counted = (projection: string, events: number) => metrics.projected.inc({ projection }, events);
  if (config.projectorMode === 'worker' && listenUrl) {
    const projector = new ThreadedProjector(db, projections, {
      url: listenUrl,
      gatherMs: config.projectorGatherMs,
      connectMs: config.dbTimeouts.connectMs,
      nice: config.projectorThreadNice,
      log,
      onApplied: counted,
      onReady: () => metrics.projectorThreadUp.set(1),
      onCrash: () => {
        metrics.projectorThreadUp.set(0);
        metrics.projectorThreadRestarts.inc();
      },
    });
    metrics.addSource(() => projector.metricsText());
    return projector;
  }
  if (config.projectorMode === 'worker') logger.warn('LEDGER_PROJECTOR=worker needs the projector role\'s URL for the thread\'s pool; running the projector inline');
  const own = createProjectorMetrics(metrics.registry);
  return createProjector(
    db,
    projections,
    listenUrl,
    (projection, events, seconds) => {
      counted(projection, events);
      own.batchSeconds.observe({ projection }, seconds);
    },
    config.projectorGatherMs,
    heapGrowingWhileBehind(config.heapGrowingPercent, config.heapGrowingPercentBehind),
  );
};
