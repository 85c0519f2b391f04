import { isConnectionError, isDataError, isTransientError } from '@lib/db';
import { unrecognized, unavailable } from '@lib/ledger';
import type { EventStoreRepository } from './event-store.repository.js';
import type { AppendOutcome, WebhookRecord } from './webhook-record.js';

interface Waiter {
  record: WebhookRecord;
  /** performance.now() when queued. */
  at: number;
  resolve: (o: AppendOutcome) => void;
  reject: (e: unknown) => void;
}

export interface GroupCommitOptions {
  /** Most deliveries in one transaction. */
  batchMax: number;
  /** Deliveries waiting for a transaction; past it new ones are refused at once (503) instead of queueing. */
  queueMax: number;
  /** Transactions in flight: two lets one batch's CPU work overlap the other's commit flush. */
  concurrency?: number;
  /**
   * A delivery that has waited this many ms while the database answered no batch is refused with 503
   * (Retry-After), so that a stalled server (SIGSTOP, a hung disk) never hangs a provider's request, while a
   * busy one that keeps committing is waited for. Still queued, it is dropped; already in flight, it may yet
   * commit (a retry then gets 200 as a duplicate). 0 or absent: no deadline.
   */
  deadlineMs?: number;
  /**
   * For writes nobody waits on (tee mode's answers): a batch smaller than batchMax waits until its oldest record
   * has been queued this long, so that such writes take a few large transactions instead of one per commit
   * slot, and leave the CPU and the WAL flushes to the writes a caller is waiting for. 0 or absent: none.
   */
  lingerMs?: number;
  /** Retries of a batch that hit a transient error (deadlock, cancel, lock timeout...) before answering 503. */
  transientRetries?: number;
  /** First retry delay; doubled at each retry, with jitter. */
  retryBaseMs?: number;
}

export interface GroupCommitStats {
  batches: number;
  records: number;
  queued: number;
  inFlight: number;
  /** Batches re-run after a transient error. */
  retries: number;
}

/**
 * Group commit: concurrent requests share one transaction, and each caller's promise settles only after that
 * transaction has committed, so a 200 always means durable. While one transaction flushes, the next batch
 * gathers, so batches grow with load and cost nothing when idle.
 */
export class GroupCommitWriter {
  private readonly queue: Waiter[] = [];
  private inFlight = 0;
  /** When the database last answered a batch (committed or refused it): the ingest deadline counts from here. */
  private lastAnswerAt = 0;
  private lingerTimer: NodeJS.Timeout | null = null;
  private readonly concurrency: number;
  readonly stats: GroupCommitStats = { batches: 0, records: 0, queued: 0, inFlight: 0, retries: 0 };
  onBatch?: (size: number, seconds: number) => void;

  constructor(
    private readonly store: EventStoreRepository,
    private readonly options: GroupCommitOptions,
  ) {
    this.concurrency = options.concurrency ?? 2;
  }

  get depth(): number {
    return this.queue.length;
  }

  submit(record: WebhookRecord): Promise<AppendOutcome> {
    if (this.queue.length >= this.options.queueMax) {
      return Promise.reject(unavailable('ingest queue is full, retry shortly', 1));
    }
    return new Promise<AppendOutcome>((resolve, reject) => {
      const deadlineMs = this.options.deadlineMs ?? 0;
      if (deadlineMs <= 0) {
        this.queue.push({ record, at: performance.now(), resolve, reject });
      } else {
        let timer: NodeJS.Timeout;
        const waiter: Waiter = {
          record,
          at: performance.now(),
          resolve: (o) => (clearTimeout(timer), resolve(o)),
          reject: (e) => (clearTimeout(timer), reject(e)),
        };
        // Slow but answering (a load peak) is not a stall: wait on while a statement came back within the
        // deadline, refuse once the database has said nothing for that long.
        const check = () => {
          const quietFor = Date.now() - this.lastAnswerAt;
          if (quietFor < deadlineMs) {
            timer = setTimeout(check, deadlineMs - quietFor);
            return;
          }
          const queued = this.queue.indexOf(waiter);
          if (queued >= 0) this.queue.splice(queued, 1);
          this.stats.queued = this.queue.length;
          reject(unavailable('the database did not answer in time, retry shortly', 1));
        };
        timer = setTimeout(check, deadlineMs);
        this.queue.push(waiter);
      }
      this.pump();
    });
  }

  private pump(): void {
    const linger = this.options.lingerMs ?? 0;
    while (this.inFlight < this.concurrency && this.queue.length > 0) {
      const waited = performance.now() - this.queue[0]!.at;
      if (linger > 0 && this.queue.length < this.options.batchMax && waited < linger) {
        this.lingerTimer ??= setTimeout(() => {
          this.lingerTimer = null;
          this.pump();
        }, linger - waited);
        break;
      }
      if (this.lingerTimer) {
        // A full batch goes now; what stays queued starts a window of its own.
        clearTimeout(this.lingerTimer);
        this.lingerTimer = null;
      }
      const batch = this.queue.splice(0, this.options.batchMax);
      this.inFlight += 1;
      void this.flush(batch).finally(() => {
        this.inFlight -= 1;
        this.pump();
      });
    }
    this.stats.queued = this.queue.length;
    this.stats.inFlight = this.inFlight;
  }

  private async flush(batch: Waiter[], attempt = 0): Promise<void> {
    const started = performance.now();
    try {
      const outcomes = await this.store.appendBatch(batch.map((w) => w.record));
      this.lastAnswerAt = Date.now();
      batch.forEach((w, i) => w.resolve(outcomes[i]!));
      this.stats.batches += 1;
      this.stats.records += batch.length;
      this.onBatch?.(batch.length, (performance.now() - started) / 1000);
    } catch (err) {
      if (!isConnectionError(err)) this.lastAnswerAt = Date.now();
      if (isTransientError(err)) {
        // A deadlock or a cancelled statement says nothing about the records: the same batch is run again, and
        // an authentic delivery is never filed as unrecognized because of a lock.
        if (attempt < (this.options.transientRetries ?? 3)) {
          this.stats.retries += 1;
          const base = (this.options.retryBaseMs ?? 50) * 2 ** attempt;
          await new Promise((r) => setTimeout(r, base + Math.random() * base));
          return this.flush(batch, attempt + 1);
        }
        const e = unavailable(`database busy (${(err as { code?: string }).code}), retry shortly`, 1);
        for (const w of batch) w.reject(e);
        return;
      }
      if (isConnectionError(err)) {
        const e = unavailable('database unavailable, retry shortly', 1);
        for (const w of batch) w.reject(e);
        return;
      }
      if (!isDataError(err)) {
        // Not the records' fault as far as we can tell (a bug, a permission...): nothing is stored, the
        // providers retry. Storing them as unrecognized would be for ever.
        const e = unavailable('delivery could not be stored, retry shortly', 1);
        for (const w of batch) w.reject(e);
        return;
      }
      // One bad record must not fail its neighbours: split until the culprit is alone.
      if (batch.length > 1) {
        const mid = batch.length >> 1;
        await Promise.all([this.flush(batch.slice(0, mid)), this.flush(batch.slice(mid))]);
        return;
      }
      await this.keepAsUnrecognized(batch[0]!, err);
    }
  }

  /** The raw request is still kept: its translation could not be stored, so it is filed as unrecognized. */
  private async keepAsUnrecognized(waiter: Waiter, cause: unknown): Promise<void> {
    const record: WebhookRecord = {
      receipt: waiter.record.receipt,
      events: [unrecognized(`translated events could not be stored: ${(cause as Error).message}`)],
    };
    try {
      const [outcome] = await this.store.appendBatch([record]);
      waiter.resolve(outcome!);
    } catch (err) {
      waiter.reject(isConnectionError(err) || isTransientError(err) ? unavailable('database unavailable, retry shortly', 1) : err);
    }
  }
}

/** Runs `fn` again after a transient error (deadlock, cancel, lock timeout...), at most `retries` times. */
export const retryTransient = async <T>(fn: () => Promise<T>, retries = 3, baseMs = 50): Promise<T> => {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await fn();
    } catch (err) {
      if (!isTransientError(err)) throw err;
      if (attempt >= retries) throw unavailable(`database busy (${(err as { code?: string }).code}), retry shortly`, 1);
      const base = baseMs * 2 ** attempt;
      await new Promise((r) => setTimeout(r, base + Math.random() * base));
    }
  }
};
