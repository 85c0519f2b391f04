import { AsyncLocalStorage } from 'node:async_hooks';
import { PostgresDialect, type CompiledQuery, type DatabaseConnection, type Driver, type QueryCompiler, type QueryResult, type TransactionSettings } from 'kysely';
import { Database, poolOf } from './database.js';
import { isConnectionError } from './postgres-errors.js';

export type ReadTarget = 'replica' | 'primary';

/** What the routing asks of the replica's monitor (apps/ledger: ReadReplicaMonitor). */
export interface ReadRoutingPolicy {
  /**
   * Where a read goes that no request has pinned: the replica while it is up; when it is down, the primary or
   * `unavailable`, as configured.
   */
  choose(): ReadTarget | 'unavailable';
  /** A connection to the replica could not be opened: mark it down until a probe finds it again. */
  replicaFailed(err: unknown): void;
  /** LEDGER_READ_FALLBACK=primary: a read the replica cannot serve goes to the primary. */
  readonly fallsBack: boolean;
  /** The error a read gets when the replica is down and falling back is off. */
  unavailable(): Error;
  /** Counts reads per server (a metric). */
  onRead?(target: ReadTarget): void;
}

/** One request's server, chosen once, so that its minPosition check and its reads see the same server. */
interface Pin {
  target: ReadTarget | 'unavailable';
}

export interface ReadRouting {
  /** Reads go to the replica or the primary (see ReadRoutingPolicy); writes must never be sent through it. */
  db: Database;
  /** Runs `fn` (and everything it starts) on one server, chosen now. Returns the choice. */
  pinned<T>(fn: (target: ReadTarget | 'unavailable') => T): T;
  /** The server of the pinned request this runs in, if any. */
  current(): ReadTarget | 'unavailable' | null;
}

/** The server went away under a statement (killed, shut down, the network): another server may answer it. */
const SERVER_GONE = new Set(['57P01', '57P02', '57P03', '08000', '08003', '08006', 'ECONNRESET', 'EPIPE', 'ECONNREFUSED']);
const serverGone = (err: unknown): boolean => {
  const e = err as { code?: string; message?: string } | undefined;
  return !!e && ((e.code !== undefined && SERVER_GONE.has(e.code)) || /Connection terminated|connection error/i.test(e.message ?? ''));
};
/** A standby cancels a read whose snapshot a replayed change invalidates (hot_standby_feedback makes it rare). */
const recoveryConflict = (err: unknown): boolean => /conflict with recovery/i.test((err as Error | undefined)?.message ?? '');

/**
 * A replica's connection that answers a statement outside a transaction from the primary when the replica fails
 * under it (gone: marked down; a recovery conflict: not), instead of failing the request.
 */
class ReplicaConnection implements DatabaseConnection {
  inTransaction = false;

  constructor(
    readonly inner: DatabaseConnection,
    /** A primary connection to answer from, or throws the policy's error when falling back is off. */
    private readonly onFailure: (err: unknown) => Promise<DatabaseConnection>,
    private readonly release: (connection: DatabaseConnection) => Promise<void>,
  ) {}

  async executeQuery<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    try {
      return await this.inner.executeQuery<R>(query);
    } catch (err) {
      if (this.inTransaction || !(serverGone(err) || recoveryConflict(err))) throw err;
      const other = await this.onFailure(err);
      try {
        return await other.executeQuery<R>(query);
      } finally {
        await this.release(other);
      }
    }
  }

  streamQuery<R>(query: CompiledQuery, chunkSize?: number): AsyncIterableIterator<QueryResult<R>> {
    return this.inner.streamQuery<R>(query, chunkSize);
  }
}

/**
 * A Kysely driver over two pg pools that picks a pool per connection: the primary's (shared with the writes; never
 * closed here) or the replica's. A replica that refuses connections, or fails under a statement, sends the read
 * (and the rest of its request) to the primary, which is never behind the replica, so a pinned request only ever
 * moves to fresher data.
 */
class RoutingDriver implements Driver {
  constructor(
    private readonly primary: Driver,
    private readonly replica: Driver,
    private readonly policy: ReadRoutingPolicy,
    private readonly pins: AsyncLocalStorage<Pin>,
  ) {}

  async init(): Promise<void> {
    await Promise.all([this.primary.init(), this.replica.init()]);
  }

  async acquireConnection(): Promise<DatabaseConnection> {
    const target = this.pins.getStore()?.target ?? this.policy.choose();
    if (target === 'unavailable') throw this.policy.unavailable();
    if (target === 'replica') {
      try {
        const inner = await this.replica.acquireConnection();
        this.policy.onRead?.('replica');
        return new ReplicaConnection(
          inner,
          async (err) => {
            if (!this.failOver(err)) throw this.policy.unavailable();
            return this.acquirePrimary();
          },
          (c) => this.primary.releaseConnection(c),
        );
      } catch (err) {
        if (!isConnectionError(err)) throw err;
        if (!this.failOver(err)) throw this.policy.unavailable();
      }
    }
    return this.acquirePrimary();
  }

  private async acquirePrimary(): Promise<DatabaseConnection> {
    const connection = await this.primary.acquireConnection();
    this.policy.onRead?.('primary');
    return connection;
  }

  /**
   * The replica failed: mark it down (unless it only cancelled a statement for a recovery conflict) and move the
   * pinned request on. True when the read may go to the primary instead.
   */
  private failOver(err: unknown): boolean {
    if (!recoveryConflict(err)) {
      this.policy.replicaFailed(err);
      const pin = this.pins.getStore();
      if (pin) pin.target = this.policy.choose();
    }
    return this.policy.fallsBack;
  }

  /** The driver a connection came from; a replica connection keeps its wrapper for its statements (failover). */
  private driverOf(connection: DatabaseConnection): Driver {
    return connection instanceof ReplicaConnection ? this.replica : this.primary;
  }

  async beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    // Inside a transaction a statement cannot move to another server: the wrapper stops failing over.
    if (connection instanceof ReplicaConnection) connection.inTransaction = true;
    await this.driverOf(connection).beginTransaction(connection, settings);
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await this.driverOf(connection).commitTransaction(connection);
    if (connection instanceof ReplicaConnection) connection.inTransaction = false;
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await this.driverOf(connection).rollbackTransaction(connection);
    if (connection instanceof ReplicaConnection) connection.inTransaction = false;
  }

  async savepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    await this.driverOf(connection).savepoint?.(connection, name, compile);
  }

  async rollbackToSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    await this.driverOf(connection).rollbackToSavepoint?.(connection, name, compile);
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    await this.driverOf(connection).releaseSavepoint?.(connection, name, compile);
  }

  async releaseConnection(connection: DatabaseConnection): Promise<void> {
    // The pg driver releases its own connection object, not the wrapper.
    await this.driverOf(connection).releaseConnection(connection instanceof ReplicaConnection ? connection.inner : connection);
  }

  /** Closes nothing: both pools belong to the Databases they were borrowed from, which close them. */
  async destroy(): Promise<void> {}
}

/**
 * The query routes' Database when DATABASE_READ_URL is set: the replica's pool (`replica`, made by createDatabase
 * with the request pool's timeouts) and, for the fallback, the primary's (`primary`, the request Database).
 * Destroying it closes neither pool: destroy `primary` and `replica` themselves.
 */
export const createReadRouting = (primary: Database, replica: Database, policy: ReadRoutingPolicy): ReadRouting => {
  const primaryPool = poolOf(primary);
  const replicaPool = poolOf(replica);
  if (!primaryPool || !replicaPool) throw new Error('read routing needs Databases made by createDatabase (their pg pools)');
  const pins = new AsyncLocalStorage<Pin>();
  const driver = new RoutingDriver(new PostgresDialect({ pool: primaryPool }).createDriver(), new PostgresDialect({ pool: replicaPool }).createDriver(), policy, pins);
  class RoutingDialect extends PostgresDialect {
    override createDriver(): Driver {
      return driver;
    }
  }
  return {
    db: new Database({ dialect: new RoutingDialect({ pool: primaryPool }) }),
    pinned: (fn) => {
      const pin: Pin = { target: policy.choose() };
      return pins.run(pin, () => fn(pin.target));
    },
    current: () => pins.getStore()?.target ?? null,
  };
};
