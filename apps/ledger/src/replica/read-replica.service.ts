import { Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { createReadRouting, readStandbyState, walBehind, type Database, type ReadRouting, type ReadTarget } from '@lib/db';
import { LedgerError } from '@lib/ledger';
import type { MetricsService } from '../metrics/metrics.service.js';

export interface ReplicaStatus {
  /** `down` until a probe or a connection fails; `unknown` before the first probe (reads try the replica). */
  state: 'up' | 'down' | 'unknown';
  /** Where a query route's read goes now. */
  reads: ReadTarget | 'unavailable';
  fallback: 'primary' | 'unavailable';
  /** 0 when the replica has replayed every WAL byte the primary wrote; else the age of its last replayed commit. */
  lagSeconds: number | null;
  lagBytes: number | null;
  /** pg_wal_replay_pause() was called on the replica: it receives WAL but applies none. */
  replayPaused: boolean;
  lastError: string | null;
  checkedAt: string | null;
}

export interface ReadReplicaOptions {
  fallback: 'primary' | 'unavailable';
  /** Between two probes of the replica (its state, its lag); a down replica is found again within this. */
  probeMs?: number;
}

/** Retry-After of READ.REPLICA_LAGGING: the replica's lag, within these bounds. */
const RETRY_AFTER_MIN_SEC = 1;
const RETRY_AFTER_MAX_SEC = 10;

/**
 * DATABASE_READ_URL: the query routes' reads go to a streaming standby while it is up. Probes it every second
 * (is it a standby, how far behind), marks it down when a probe or a connection fails, and routes reads to the
 * primary meanwhile (LEDGER_READ_FALLBACK=primary, the default: the primary is never behind its replica, so the
 * answers stay right and only the load moves) or refuses them with 503 READ.REPLICA_UNAVAILABLE. Without a
 * replica, `db` is the primary's request Database and nothing else happens.
 */
export class ReadReplicaService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('ReadReplica');
  readonly db: Database;
  private readonly routing: ReadRouting | null;
  private readonly probeMs: number;
  private state: ReplicaStatus['state'] = 'unknown';
  private lagSeconds: number | null = null;
  private lagBytes: number | null = null;
  private replayPaused = false;
  private lastError: string | null = null;
  private checkedAt: Date | null = null;
  private timer: NodeJS.Timeout | null = null;
  private probing: Promise<void> | null = null;
  private stopped = false;

  constructor(
    private readonly primary: Database,
    private readonly replica: Database | null,
    private readonly options: ReadReplicaOptions,
    private readonly metrics: MetricsService,
  ) {
    this.probeMs = options.probeMs ?? 1000;
    this.routing = replica
      ? createReadRouting(primary, replica, {
          choose: () => this.reads(),
          replicaFailed: (err) => this.markDown(err),
          fallsBack: options.fallback === 'primary',
          unavailable: () => new LedgerError('READ.REPLICA_UNAVAILABLE', 'the read replica is unavailable, retry shortly', { retryAfterSec: 1 }),
          onRead: (server) => metrics.readQueries.inc({ server }),
        })
      : null;
    this.db = this.routing?.db ?? primary;
  }

  get configured(): boolean {
    return this.routing !== null;
  }

  /** Runs a request's work on one server, chosen now (see createReadRouting); as is without a replica. */
  pinned<T>(fn: () => T): T {
    return this.routing ? this.routing.pinned(fn) : fn();
  }

  /** The server the current pinned request reads from (`primary` without a replica). */
  current(): ReadTarget | 'unavailable' {
    return this.routing?.current() ?? 'primary';
  }

  /** The Retry-After of a lagging replica: its lag in seconds, within 1..10. */
  retryAfterSec(): number {
    const lag = this.lagSeconds ?? RETRY_AFTER_MIN_SEC;
    return Math.min(RETRY_AFTER_MAX_SEC, Math.max(RETRY_AFTER_MIN_SEC, Math.ceil(lag)));
  }

  status(): ReplicaStatus {
    return {
      state: this.state,
      reads: this.reads(),
      fallback: this.options.fallback,
      lagSeconds: this.lagSeconds,
      lagBytes: this.lagBytes,
      replayPaused: this.replayPaused,
      lastError: this.lastError,
      checkedAt: this.checkedAt?.toISOString() ?? null,
    };
  }

  private reads(): ReadTarget | 'unavailable' {
    if (this.state !== 'down') return 'replica';
    return this.options.fallback === 'primary' ? 'primary' : 'unavailable';
  }

  private markDown(err: unknown): void {
    const message = (err as Error)?.message || String(err);
    if (this.state !== 'down') this.logger.warn(`read replica down (${message}); reads go to ${this.options.fallback === 'primary' ? 'the primary' : 'nobody: 503'} until it answers again`);
    this.state = 'down';
    this.lastError = message;
    this.lagSeconds = null;
    this.lagBytes = null;
    this.metrics.replicaUp.set(0);
  }

  /** One probe: the replica's replay state, then the primary's WAL position for the byte lag. Never throws. */
  probe(): Promise<void> {
    if (!this.replica) return Promise.resolve();
    this.probing ??= (async () => {
      try {
        const s = await readStandbyState(this.replica!);
        if (!s.inRecovery) throw new Error('DATABASE_READ_URL is not a standby (pg_is_in_recovery() is false)');
        let bytes: number | null = null;
        try {
          bytes = s.replayLsn ? (await walBehind(this.primary, s.replayLsn)).bytes : null;
        } catch {
          // The primary is unreachable: the lag is unknown, the replica still serves what it has.
        }
        if (this.state === 'down') this.logger.log('read replica up again; reads go to it');
        this.state = 'up';
        this.lastError = null;
        this.replayPaused = s.replayPause !== null && s.replayPause !== 'not paused';
        this.lagBytes = bytes;
        this.lagSeconds = bytes === 0 ? 0 : s.lastReplayAt ? Math.max(0, (s.now.getTime() - s.lastReplayAt.getTime()) / 1000) : null;
        this.metrics.replicaUp.set(1);
        if (this.lagSeconds !== null) this.metrics.replicaLagSeconds.set(this.lagSeconds);
        if (this.lagBytes !== null) this.metrics.replicaLagBytes.set(this.lagBytes);
      } catch (err) {
        this.markDown(err);
      } finally {
        this.checkedAt = new Date();
        this.probing = null;
      }
    })();
    return this.probing;
  }

  onApplicationBootstrap(): void {
    if (!this.replica) return;
    const tick = async () => {
      await this.probe();
      if (!this.stopped) this.timer = setTimeout(() => void tick(), this.probeMs);
    };
    void tick();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    await this.probing;
  }
}
