import 'reflect-metadata';
import { Logger } from '@nestjs/common';
import { loadConfig, securityWarnings } from '@lib/config';
import { createApp } from './app.factory.js';
import { openDatabase } from './database.runtime.js';

const logger = new Logger('Ledger');

async function bootstrap(): Promise<void> {
  const config = loadConfig();
  const database = await openDatabase(config);
  const app = await createApp({
    config,
    db: database.db,
    projectorDb: database.projector.db,
    schema: database.schema,
    databaseUrl: database.projector.url,
    benchRoutes: process.env.LEDGER_BENCH_ROUTES === '1',
  });
  app.enableShutdownHooks();
  for (const warning of securityWarnings(config)) logger.warn(warning);
  if (config.secrets.twilio.length > 0 && !config.publicUrl) {
    logger.warn('twilio: LEDGER_PUBLIC_URL is not set; signatures are checked against the Host header, which proxies may change');
  }
  if (config.apiKeys.length === 0) logger.warn('LEDGER_API_KEYS is empty: query, import and admin routes refuse every request');
  await app.listen({ port: config.port, host: config.host });
  logger.log(`listening on ${await app.getUrl()} (database: ${database.embedded ? 'embedded PostgreSQL' : 'DATABASE_URL'}, ${database.mode === 'single' ? 'one role' : 'app and projector roles'})`);
  await database.ready;
  logger.log('migrations applied; ready');

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    logger.log(`${signal}: draining`);
    await app.close();
    await database.close();
    process.exit(0);
  };
  process.once('SIGINT', () => void stop('SIGINT'));
  process.once('SIGTERM', () => void stop('SIGTERM'));
}

bootstrap().catch((err: unknown) => {
  logger.error(`failed to start: ${(err as Error).message}`);
  process.exit(1);
});
