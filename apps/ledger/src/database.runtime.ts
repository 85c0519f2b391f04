import { Logger } from '@nestjs/common';
import type { LedgerConfig } from '@lib/config';
import { createDatabase, migrateToLatest, startEmbeddedPostgres, type DatabaseHandle, type EmbeddedPostgresHandle } from '@lib/db';
import type { SchemaState } from './common/tokens.js';

export interface DatabaseRuntime extends DatabaseHandle {
  url: string;
  embedded: EmbeddedPostgresHandle | null;
  schema: SchemaState;
  /** Resolves once migrations are applied (retried in the background while the database is unreachable). */
  ready: Promise<void>;
  close(): Promise<void>;
}

const logger = new Logger('Database');

/**
 * Connects to DATABASE_URL, or starts the embedded PostgreSQL under LEDGER_DATA_DIR when none is given, and
 * applies migrations. An unreachable external server does not stop the service from starting: /health says
 * 503 until the migrations have run, and they are retried every two seconds.
 */
export const openDatabase = async (config: LedgerConfig): Promise<DatabaseRuntime> => {
  let embedded: EmbeddedPostgresHandle | null = null;
  let url = config.databaseUrl;
  if (!url) {
    logger.log(`no DATABASE_URL: starting the embedded PostgreSQL in ${config.dataDir}`);
    embedded = await startEmbeddedPostgres({ dataDir: config.dataDir });
    url = embedded.url;
  }
  const handle = createDatabase(url, config.poolSize);
  const schema: SchemaState = { migrated: false, lastError: null };
  let closed = false;
  const ready = (async () => {
    for (;;) {
      try {
        await migrateToLatest(handle.db);
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
  return {
    ...handle,
    url,
    embedded,
    schema,
    ready,
    close: async () => {
      closed = true;
      await handle.db.destroy();
      await embedded?.stop();
    },
  };
};
