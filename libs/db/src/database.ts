import { createHash } from 'node:crypto';
import { Kysely, PostgresDialect } from 'kysely';
import pg from 'pg';
import type { DB } from './database.types.js';

/** Own DI token and type: the app's one Kysely instance over a pg pool. */
export class Database extends Kysely<DB> {}

export interface DatabaseHandle {
  db: Database;
  pool: pg.Pool;
}

/**
 * Per-pool limits, sent as startup parameters so the server enforces them on every session of the pool. A
 * stalled server cannot enforce anything, so ingest also has its own deadline (GroupCommitWriter).
 */
export interface DatabaseTimeouts {
  /** Give up opening a connection after this long (a stopped server accepts TCP and never answers). */
  connectMs?: number;
  /** statement_timeout; 0 = none (rebuilds and migrations may run long). */
  statementMs?: number;
  /** lock_timeout; 0 = none. */
  lockMs?: number;
  /** idle_in_transaction_session_timeout: a client that stalls inside a transaction stops holding its locks. */
  idleInTransactionMs?: number;
}

export interface DatabaseOptions extends DatabaseTimeouts {
  applicationName?: string;
  /**
   * false: the sessions never start parallel workers (max_parallel_workers_per_gather = 0). A request's
   * statements read a few rows through indexes, but over a partitioned store the planner adds up the per-partition
   * scans into a cost that crosses the parallel threshold, and launching two workers cost the events route about
   * 5 of its 7 ms in PostgreSQL (auto_explain: a Gather of a Parallel Append over 16 month partitions returning 2
   * rows; `node dist/bench/queries.probe.js --route 'GET /v1/calls/{id}/events' --explain-over 2`).
   */
  parallelQuery?: boolean;
}

/** Request-serving pools: a statement or lock wait past these is an error (answered 503), never a hang. */
export const APP_TIMEOUTS: Required<DatabaseTimeouts> = { connectMs: 2_000, statementMs: 15_000, lockMs: 5_000, idleInTransactionMs: 30_000 };
/** Projector and migrations: long statements are legitimate (a rebuild's bulk load), stalls inside a transaction are not. */
export const BACKGROUND_TIMEOUTS: Required<DatabaseTimeouts> = { connectMs: 5_000, statementMs: 0, lockMs: 60_000, idleInTransactionMs: 120_000 };

/** Without options: only the connect timeout (tools, tests, benches). The service passes the sets above. */
const NO_LIMITS: Required<DatabaseTimeouts> = { connectMs: 5_000, statementMs: 0, lockMs: 0, idleInTransactionMs: 0 };

export const createDatabase = (connectionString: string, max = 10, options: DatabaseOptions = {}): DatabaseHandle => {
  const t = { ...NO_LIMITS, ...options };
  const pool = new pg.Pool({
    connectionString,
    max,
    // A dead or stopped server must surface as an error quickly, never as a request that hangs.
    connectionTimeoutMillis: t.connectMs,
    ...(t.statementMs > 0 ? { statement_timeout: t.statementMs } : {}),
    ...(t.lockMs > 0 ? { lock_timeout: t.lockMs } : {}),
    ...(t.idleInTransactionMs > 0 ? { idle_in_transaction_session_timeout: t.idleInTransactionMs } : {}),
    application_name: options.applicationName ?? 'call-ledger',
    ...(options.parallelQuery === false ? { options: '-c max_parallel_workers_per_gather=0' } : {}),
  });
  // An idle client's error (server restart) must not crash the process; the next checkout reconnects.
  pool.on('error', () => undefined);
  // The pool listens for errors only on idle clients. A checked-out client between two statements (inside a
  // transaction) that loses its server emits 'error' with no listener, which kills the process: the
  // database-outage chaos test found it. Its next statement fails with a connection error, answered 503.
  pool.on('connect', (client) => void client.on('error', () => undefined));
  pool.on('connect', prepareMarked);
  const db = new Database({ dialect: new PostgresDialect({ pool }) });
  pools.set(db, pool);
  return { db, pool };
};

const pools = new WeakMap<Database, pg.Pool>();

/**
 * A statement whose text starts with this comment is prepared once per session: sent as a named statement (its
 * name a hash of its text), so that PostgreSQL parses and plans it once instead of on every call. For the hot
 * path's fixed statements only (`ledger_append`): an unnamed statement with array parameters and sub-selects was
 * parsed and planned per call, about a fifth of the PostgreSQL CPU of a one-delivery append (issue 14,
 * bench/profile-notes.md). The server re-plans it itself when what it reads changes (a replaced function).
 */
export const PREPARED = '/* prepared */';

const preparedName = (text: string): string => `ledger_${createHash('sha1').update(text).digest('hex').slice(0, 24)}`;

/** Kysely sends `client.query(text, values)`; a marked text goes as `{ name, text, values }` (node-postgres parses a name once per connection). */
const prepareMarked = (client: pg.PoolClient): void => {
  const query = client.query.bind(client) as (...args: unknown[]) => unknown;
  (client as unknown as { query: (...args: unknown[]) => unknown }).query = (text: unknown, ...rest: unknown[]) =>
    typeof text === 'string' && text.startsWith(PREPARED) && Array.isArray(rest[0])
      ? query({ name: preparedName(text), text, values: rest[0] }, ...rest.slice(1))
      : query(text, ...rest);
};

/**
 * The pg pool under a Database made by createDatabase: COPY (the bulk import) needs a raw client, which Kysely
 * does not hand out. Null for a Database made otherwise.
 */
export const poolOf = (db: Database): pg.Pool | null => pools.get(db) ?? null;
