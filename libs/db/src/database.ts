import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { DB } from './database.types.js';

/** Own DI token and type: the app's one Kysely instance over a pg pool. */
export class Database extends Kysely<DB> {}

export interface DatabaseHandle {
  db: Database;
  pool: pg.Pool;
}

export const createDatabase = (connectionString: string, max = 10): DatabaseHandle => {
  const pool = new pg.Pool({
    connectionString,
    max,
    // A dead server must surface as an error quickly, never as a request that hangs.
    connectionTimeoutMillis: 5_000,
    application_name: 'call-ledger',
  });
  // An idle client's error (server restart) must not crash the process; the next checkout reconnects.
  pool.on('error', () => undefined);
  const db = new Database({ dialect: new PostgresDialect({ pool }) });
  return { db, pool };
};
