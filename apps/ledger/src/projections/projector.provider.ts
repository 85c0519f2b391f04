import { Logger } from '@nestjs/common';
import type { Database } from '@lib/db';
import { Projector, type ProjectionDefinition } from '@lib/projections';

export const PROJECTIONS = Symbol('PROJECTIONS');

const logger = new Logger('Projector');

export const createProjector = (
  db: Database,
  projections: ProjectionDefinition[],
  listenUrl: string | null,
  onApplied?: (projection: string, events: number) => void,
  gatherMs = 0,
): Projector =>
  new Projector(db, projections, {
    listenUrl,
    onApplied,
    gatherMs,
    log: (level, message) => (level === 'error' ? logger.error(message) : level === 'warn' ? logger.warn(message) : logger.log(message)),
  });
