import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { loadConfig, type LedgerConfig } from '@lib/config';
import { createTestDatabase, type TestDatabase } from '@lib/testing';
import { Projector } from '@lib/projections';
import { createApp } from '../../apps/ledger/src/app.factory.js';

export interface TestApp {
  app: NestFastifyApplication;
  db: TestDatabase;
  config: LedgerConfig;
  close(): Promise<void>;
}

export const API_KEY = 'test-key-0123456789';

export const SECRETS = {
  FREECLIMB_SIGNING_SECRET: 'sigsec_ead6d3b6904196c60835d039e91b3341c77a7793',
  JAMBONZ_WEBHOOK_SECRET: 'whsec_example_4f2a',
  TWILIO_AUTH_TOKEN: 'example_auth_token',
  RESTCOMM_WEBHOOK_TOKEN: 'rc-token-1',
};

/** The whole HTTP app on a fresh database, called in-process with `app.inject()`. */
export const startTestApp = async (
  env: Record<string, string> = {},
  options: { onRoute?: (route: { method: string | string[]; url: string }) => void; logDestination?: { write(line: string): void } } = {},
): Promise<TestApp> => {
  const db = await createTestDatabase();
  const config = loadConfig({
    LEDGER_API_KEYS: API_KEY,
    LEDGER_PUBLIC_URL: 'https://ledger.example.com',
    LOG_LEVEL: 'silent',
    DATABASE_URL: db.url,
    ...env,
  });
  const app = await createApp({ config, db: db.db, schema: { migrated: true, lastError: null }, databaseUrl: db.url, benchRoutes: true, logDestination: options.logDestination });
  // Nest adds its routes in init(), so a hook added here sees every one of them.
  if (options.onRoute) app.getHttpAdapter().getInstance().addHook('onRoute', options.onRoute);
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
  return {
    app,
    db,
    config,
    close: async () => {
      await app.close();
      await db.drop();
    },
  };
};

/** The app's projector, once it has initialised (it does so in the background after the schema check). */
export const readyProjector = async (t: TestApp): Promise<Projector> => {
  const projector = t.app.get(Projector);
  const deadline = Date.now() + 10_000;
  while ((await projector.status()).length === 0) {
    if (Date.now() > deadline) throw new Error('projector did not initialise');
    await new Promise((r) => setTimeout(r, 20));
  }
  return projector;
};
