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
  // The pool listens for errors only on idle clients. A checked-out client between two statements (inside a
  // transaction) that loses its server emits 'error' with no listener, which kills the process: the
  // database-outage chaos test found it. Its next statement fails with a connection error, answered 503.
  pool.on('connect', (client) => void client.on('error', () => undefined));
  const db = new Database({ dialect: new PostgresDialect({ pool }) });
  return { db, pool };
};
