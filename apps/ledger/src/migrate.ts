import { Logger } from '@nestjs/common';
import { loadConfig } from '@lib/config';
import { useJsonLogs } from './common/logging.js';
import { runMigrations } from './migrate.command.js';

/**
 * `npm run migrate`: applies migrations as the owner and exits (embedded PostgreSQL when DATABASE_URL is unset,
 * attached to a running service's server; LEDGER_DATABASE_OWNER_URL, else DATABASE_URL, otherwise).
 */
const logger = new Logger('Migrate');
const config = loadConfig();
useJsonLogs(config.logLevel);
try {
  await runMigrations(config);
  logger.log('migrations applied');
} catch (err) {
  logger.error(`migration failed: ${(err as Error).message}`);
  process.exitCode = 1;
}
