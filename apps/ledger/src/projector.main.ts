import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { loadConfig } from '@lib/config';
import { BACKGROUND_TIMEOUTS, createDatabase } from '@lib/db';
import { useJsonLogs } from './common/logging.js';
import { callLegsProjection } from '@lib/projections';
import { openToolDatabase } from './database.runtime.js';
import { applyHeapGrowing, heapGrowingWhileBehind } from './heap-growing.runtime.js';
import { createProjector } from './projections/projector.provider.js';

/**
 * `npm run projector`: the projector as a process of its own, so that ingest and projection scale apart.
 * Run the service with LEDGER_PROJECTOR=off beside it (or not: the advisory locks keep them from
 * applying an event twice). Without DATABASE_URL it attaches to the embedded PostgreSQL of a running service.
 */
const logger = new Logger('ProjectorProcess');
const config = loadConfig();
applyHeapGrowing(config.heapGrowingPercent);
useJsonLogs(config.logLevel);
const database = await openToolDatabase(config, { attach: true });
await database.migrate();
// As the projector role (LEDGER_PROJECTOR_DATABASE_URL; the embedded cluster's ledger_projector).
const url = database.projectorUrl;
const { db } = createDatabase(url, 4, { ...BACKGROUND_TIMEOUTS, applicationName: 'call-ledger-projector' });
const projector = createProjector(db, [callLegsProjection], url, undefined, config.projectorGatherMs, heapGrowingWhileBehind(config.heapGrowingPercent, config.heapGrowingPercentBehind));
await projector.init();
projector.start();
logger.log(`projecting ${projector.projections.map((p) => p.name).join(', ')}`);
const stop = async () => {
  await projector.stop();
  await db.destroy();
  await database.stop();
  process.exit(0);
};
process.once('SIGINT', () => void stop());
process.once('SIGTERM', () => void stop());
