import { Logger } from '@nestjs/common';
import { loadConfig } from '@lib/config';
import { openToolDatabase } from './database.runtime.js';
import { useJsonLogs } from './common/logging.js';

/**
 * `npm run migrate`: applies migrations as the owner and exits (embedded PostgreSQL when DATABASE_URL is unset;
 * LEDGER_DATABASE_OWNER_URL, else DATABASE_URL, otherwise).
 */
const logger = new Logger('Migrate');
const config = loadConfig();
useJsonLogs(config.logLevel);
const database = await openToolDatabase(config, { attach: false });
try {
  await database.migrate();
  logger.log('migrations applied');
} catch (err) {
  logger.error(`migration failed: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  await database.stop();
}
