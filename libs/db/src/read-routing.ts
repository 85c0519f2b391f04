import { AsyncLocalStorage } from 'node:async_hooks';
import { PostgresDialect, type DatabaseConnection, type Driver, type QueryCompiler, type TransactionSettings } from 'kysely';
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

/**
 * A Kysely driver over two pg pools that picks a pool per connection: the primary's (shared with the writes; never
 * closed here) or the replica's. A replica that refuses connections sends the read (and the rest of its request)
 * to the primary, which is never behind the replica, so a pinned request only ever moves to fresher data.
 */
class RoutingDriver implements Driver {
  private readonly owners = new WeakMap<DatabaseConnection, Driver>();

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
    const pin = this.pins.getStore();
    const target = pin?.target ?? this.policy.choose();
    if (target === 'unavailable') throw this.policy.unavailable();
    if (target === 'replica') {
      try {
        return this.own(await this.replica.acquireConnection(), this.replica, 'replica');
      } catch (err) {
        if (!isConnectionError(err)) throw err;
        this.policy.replicaFailed(err);
        const next = this.policy.choose();
        if (pin) pin.target = next;
        if (next !== 'primary') throw this.policy.unavailable();
      }
    }
    return this.own(await this.primary.acquireConnection(), this.primary, 'primary');
  }

  private own(connection: DatabaseConnection, driver: Driver, target: ReadTarget): DatabaseConnection {
    this.owners.set(connection, driver);
    this.policy.onRead?.(target);
    return connection;
  }

  private of(connection: DatabaseConnection): Driver {
    return this.owners.get(connection) ?? this.primary;
  }

  beginTransaction(connection: DatabaseConnection, settings: TransactionSettings): Promise<void> {
    return this.of(connection).beginTransaction(connection, settings);
  }

  commitTransaction(connection: DatabaseConnection): Promise<void> {
    return this.of(connection).commitTransaction(connection);
  }

  rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    return this.of(connection).rollbackTransaction(connection);
  }

  async savepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    await this.of(connection).savepoint?.(connection, name, compile);
  }

  async rollbackToSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    await this.of(connection).rollbackToSavepoint?.(connection, name, compile);
  }

  async releaseSavepoint(connection: DatabaseConnection, name: string, compile: QueryCompiler['compileQuery']): Promise<void> {
    await this.of(connection).releaseSavepoint?.(connection, name, compile);
  }

  releaseConnection(connection: DatabaseConnection): Promise<void> {
    return this.of(connection).releaseConnection(connection);
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
