import { Logger } from '@nestjs/common';
import type { LedgerConfig } from '@lib/config';
import {
  BACKGROUND_TIMEOUTS,
  createDatabase,
  grantServiceLogins,
  migrateToLatest,
  startEmbeddedPostgres,
  type DatabaseHandle,
  type EmbeddedPostgresHandle,
} from '@lib/db';
import type { SchemaState } from './common/tokens.js';

/**
 * - `embedded`: the embedded PostgreSQL; migrations as its superuser, the service as ledger_app/ledger_projector.
 * - `roles`: an external server with LEDGER_DATABASE_OWNER_URL (migrations), DATABASE_URL (ledger_app) and
 *   LEDGER_PROJECTOR_DATABASE_URL (ledger_projector).
 * - `single`: an external server with DATABASE_URL only: one role does everything, as before roles existed.
 */
export type DatabaseMode = 'embedded' | 'roles' | 'single';

export interface DatabaseRuntime extends DatabaseHandle {
  /** The request-serving role's URL (db/pool above). */
  url: string;
  /** The projector's pool and URL (LISTEN): owns the read models, reads the store. */
  projector: DatabaseHandle & { url: string };
  /**
   * DATABASE_READ_URL's pool (a streaming standby) for the query routes, with the request pool's size and timeouts
   * and the role its URL names (ledger_app's credentials: roles replicate with the cluster). Null when unset.
   */
  replica: (DatabaseHandle & { url: string }) | null;
  mode: DatabaseMode;
  embedded: EmbeddedPostgresHandle | null;
  schema: SchemaState;
  /** Resolves once migrations are applied (retried in the background while the database is unreachable). */
  ready: Promise<void>;
  /** Closes the pools and stops the embedded server; safe to call more than once and from several hooks. */
  close(): Promise<void>;
}

const logger = new Logger('Database');

export interface OpenDatabaseOptions {
  /** The embedded PostgreSQL could not be restarted: the process must exit so that a supervisor restarts it. */
  onFatal?: (err: unknown) => void;
}

const PROJECTOR_POOL = 4;

const defaultFatal = (err: unknown) => {
  logger.fatal(`the embedded PostgreSQL could not be restarted (${(err as Error)?.message ?? String(err)}); exiting`);
  process.exit(1);
};

const migrateAsOwner = async (ownerUrl: string): Promise<void> => {
  const owner = createDatabase(ownerUrl, 2, { ...BACKGROUND_TIMEOUTS, applicationName: 'call-ledger-migrate' });
  try {
    await migrateToLatest(owner.db);
  } finally {
    await owner.db.destroy();
  }
};

/**
 * Connects to DATABASE_URL, or starts the embedded PostgreSQL under LEDGER_DATA_DIR when none is given, and
 * applies migrations as the owner. An unreachable external server does not stop the service from starting:
 * /health says 503 until the migrations have run, and they are retried every two seconds. The embedded server
 * is migrated before this returns (it is local: failing there is a broken installation), and is supervised.
 */
export const openDatabase = async (config: LedgerConfig, options: OpenDatabaseOptions = {}): Promise<DatabaseRuntime> => {
  let embedded: EmbeddedPostgresHandle | null = null;
  let mode: DatabaseMode;
  let ownerUrl: string;
  let appUrl: string;
  let projectorUrl: string;
  if (!config.databaseUrl) {
    mode = 'embedded';
    logger.log(`no DATABASE_URL: starting the embedded PostgreSQL in ${config.dataDir}`);
    embedded = await startEmbeddedPostgres({
      dataDir: config.dataDir,
      warn: (line) => logger.warn(line),
      supervise: { maxFailures: config.embeddedMaxRestarts, onGiveUp: options.onFatal ?? defaultFatal },
    });
    ownerUrl = embedded.url;
    try {
      await migrateAsOwner(ownerUrl);
      await grantServiceLogins(ownerUrl, embedded.credentials);
    } catch (err) {
      await embedded.stop();
      throw err;
    }
    appUrl = embedded.roleUrl('app');
    projectorUrl = embedded.roleUrl('projector');
  } else if (config.databaseOwnerUrl) {
    mode = 'roles';
    ownerUrl = config.databaseOwnerUrl;
    appUrl = config.databaseUrl;
    projectorUrl = config.projectorDatabaseUrl ?? config.databaseUrl;
  } else {
    mode = 'single';
    logger.warn('only DATABASE_URL is set: the service runs as that role, which may alter or drop the store. Set LEDGER_DATABASE_OWNER_URL and LEDGER_PROJECTOR_DATABASE_URL to run as least-privileged roles (README "Database roles")');
    ownerUrl = appUrl = projectorUrl = config.databaseUrl;
  }

  const handle = createDatabase(appUrl, config.poolSize, { ...config.dbTimeouts, applicationName: 'call-ledger', parallelQuery: false });
  const projector = createDatabase(projectorUrl, PROJECTOR_POOL, { ...BACKGROUND_TIMEOUTS, connectMs: config.dbTimeouts.connectMs, applicationName: 'call-ledger-projector' });
  const replica = config.readDatabaseUrl
    ? { ...createDatabase(config.readDatabaseUrl, config.poolSize, { ...config.dbTimeouts, applicationName: 'call-ledger-read', parallelQuery: false }), url: config.readDatabaseUrl }
    : null;
  const schema: SchemaState = { migrated: mode === 'embedded', lastError: null };
  let closed = false;
  const ready =
    mode === 'embedded'
      ? Promise.resolve()
      : (async () => {
          for (;;) {
            try {
              await migrateAsOwner(ownerUrl);
              schema.migrated = true;
              schema.lastError = null;
              return;
            } catch (err) {
              schema.lastError = (err as Error).message;
              if (closed) return;
              logger.warn(`migrations not applied yet (${schema.lastError}); retrying in 2 s`);
              await new Promise((r) => setTimeout(r, 2000));
              if (closed) return;
            }
          }
        })();
  let closing: Promise<void> | null = null;
  return {
    ...handle,
    url: appUrl,
    projector: { ...projector, url: projectorUrl },
    replica,
    mode,
    embedded,
    schema,
    ready,
    close: () => {
      closing ??= (async () => {
        closed = true;
        await Promise.allSettled([handle.db.destroy(), projector.db.destroy(), replica?.db.destroy()]);
        await embedded?.stop();
      })();
      return closing;
    },
  };
};

/**
 * For the command-line tools (migrate, projector process, projections CLI): the embedded server of a running
 * service (attached) or one started for the run, with the migrations applied and the service roles able to log
 * in; or the external URLs of the configuration.
 */
export const openToolDatabase = async (
  config: LedgerConfig,
  options: { attach: boolean },
): Promise<{ ownerUrl: string; appUrl: string; projectorUrl: string; migrate(): Promise<void>; stop(): Promise<void> }> => {
  if (config.databaseUrl) {
    const ownerUrl = config.databaseOwnerUrl ?? config.databaseUrl;
    return {
      ownerUrl,
      appUrl: config.databaseUrl,
      projectorUrl: config.projectorDatabaseUrl ?? config.databaseUrl,
      migrate: () => migrateAsOwner(ownerUrl),
      stop: async () => undefined,
    };
  }
  const embedded = await startEmbeddedPostgres({ dataDir: config.dataDir, attach: options.attach });
  return {
    ownerUrl: embedded.url,
    appUrl: embedded.roleUrl('app'),
    projectorUrl: embedded.roleUrl('projector'),
    migrate: async () => {
      await migrateAsOwner(embedded.url);
      await grantServiceLogins(embedded.url, embedded.credentials);
    },
    stop: () => embedded.stop(),
  };
};
