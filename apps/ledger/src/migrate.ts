import { Logger } from '@nestjs/common';
import { loadConfig } from '@lib/config';
import { useJsonLogs } from './common/logging.js';
import { createDatabase, migrateToLatest, startEmbeddedPostgres } from '@lib/db';

/** `npm run migrate`: applies migrations and exits (embedded PostgreSQL when DATABASE_URL is unset). */
const logger = new Logger('Migrate');
const config = loadConfig();
useJsonLogs(config.logLevel);
const embedded = config.databaseUrl ? null : await startEmbeddedPostgres({ dataDir: config.dataDir });
const { db } = createDatabase(config.databaseUrl ?? embedded!.url, 2);
try {
  const result = await migrateToLatest(db);
  const applied = result.results?.filter((r) => r.status === 'Success').map((r) => r.migrationName) ?? [];
  logger.log(applied.length ? `applied: ${applied.join(', ')}` : 'already up to date');
} catch (err) {
  logger.error(`migration failed: ${(err as Error).message}`);
  process.exitCode = 1;
} finally {
  await db.destroy();
  await embedded?.stop();
}
