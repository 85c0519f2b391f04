import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import { loadConfig, type LedgerConfig } from '@lib/config';
import { APP_TIMEOUTS, createDatabase, type DatabaseHandle } from '@lib/db';
import { createTestDatabase, type TestDatabase } from '@lib/testing';
import { Projector } from '@lib/projections';
import { createApp } from '../../apps/ledger/src/app.factory.js';
import { ProjectorLifecycle } from '../../apps/ledger/src/projections/projector.lifecycle.js';

export interface TestApp {
  app: NestFastifyApplication;
  /** The database as its superuser, for the test's own reads and tampering; the app itself runs as ledger_app/ledger_projector. */
  db: TestDatabase;
  /** The app's pools: ledger_app (requests) and ledger_projector (the in-process projector). */
  pools: { app: DatabaseHandle; projector: DatabaseHandle };
  config: LedgerConfig;
  close(): Promise<void>;
}

export const API_KEY = 'test-key-0123456789';
/** Scoped keys of the test app (LEDGER_API_KEYS entries `<name>:<scopes>:<key>`). */
export const READ_KEY = 'test-read-key-0123456789';
export const IMPORT_KEY = 'test-import-key-0123456789';
export const ADMIN_KEY = 'test-admin-key-0123456789';
export const API_KEYS_ENV = `ops:read+import+admin:${API_KEY},console:read:${READ_KEY},loader:import:${IMPORT_KEY},root:admin:${ADMIN_KEY}`;

export const SECRETS = {
  FREECLIMB_SIGNING_SECRET: 'sigsec_ead6d3b6904196c60835d039e91b3341c77a7793',
  JAMBONZ_WEBHOOK_SECRET: 'whsec_example_4f2a',
  TWILIO_AUTH_TOKEN: 'example_auth_token',
  RESTCOMM_WEBHOOK_TOKEN: 'rc-token-0123456789',
};

/** The whole HTTP app on a fresh database, called in-process with `app.inject()`. */
export const startTestApp = async (
  env: Record<string, string> = {},
  options: {
    onRoute?: (route: { method: string | string[]; url: string }) => void;
    logDestination?: { write(line: string): void };
    /** A database the test filled before the start (a restart over an existing store); close() leaves it to the test. */
    db?: TestDatabase;
  } = {},
): Promise<TestApp> => {
  const db = options.db ?? (await createTestDatabase());
  const config = loadConfig({
    LEDGER_API_KEYS: API_KEYS_ENV,
    LEDGER_PUBLIC_URL: 'https://ledger.example.com',
    LOG_LEVEL: 'silent',
    // No periodic checkpoint in the middle of a test: tests take theirs with POST /v1/admin/checkpoints.
    LEDGER_CHECKPOINT_INTERVAL_SEC: '0',
    DATABASE_URL: db.url,
    ...env,
  });
  // As in production: requests as ledger_app (no write but ledger_append, no DDL), the projector as ledger_projector.
  const pools = { app: createDatabase(db.appUrl, 10, { ...APP_TIMEOUTS, parallelQuery: false }), projector: createDatabase(db.projectorUrl, 4) };
  const app = await createApp({
    config,
    db: pools.app.db,
    projectorDb: pools.projector.db,
    schema: { migrated: true, lastError: null },
    databaseUrl: db.projectorUrl,
    benchRoutes: true,
    logDestination: options.logDestination,
  });
  // Nest adds its routes in init(), so a hook added here sees every one of them.
  if (options.onRoute) app.getHttpAdapter().getInstance().addHook('onRoute', options.onRoute);
  await app.init();
  await app.getHttpAdapter().getInstance().ready();
  // Ready as a test needs it: the projector runs (in a worker thread it takes a moment to load and initialise), so
  // that a `?minPosition=` read right after the start does not spend its wait on the thread's start-up.
  await app.get(ProjectorLifecycle).started;
  return {
    app,
    db,
    pools,
    config,
    close: async () => {
      await app.close();
      await Promise.allSettled([pools.app.db.destroy(), pools.projector.db.destroy()]);
      if (!options.db) await db.drop();
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
