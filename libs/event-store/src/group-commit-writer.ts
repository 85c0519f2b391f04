import pRetry from 'p-retry';
import { isConnectionError, isDataError, isTransientError } from '@lib/db';
import { unrecognized, unavailable } from '@lib/ledger';
import type { EventStoreRepository } from './event-store.repository.js';
import type { AppendOutcome, WebhookRecord } from './webhook-record.js';

/**
 * The least records a batch is split down to when the queue is shared out over free transaction slots. A
 * `ledger_append` call costs about 0.6 ms of PostgreSQL CPU whatever its size and about 0.08 ms per delivery
 * (bench/append-overhead.probe.ts), so below this the fixed cost would outweigh having two batches in flight.
 */
const SPLIT_MIN = 16;

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
  /** Transactions in flight under load: two lets one batch's CPU work overlap the other's commit flush. */
  concurrency?: number;
  /**
   * Most transactions in flight while few deliveries are outstanding (few appenders): a request then starts its
   * own transaction instead of waiting for one of `concurrency` to commit, and PostgreSQL's WAL flush is shared
   * by the commits that arrive together. Under load the limit is `concurrency`, where batches grow. Absent:
   * `concurrency` (no adaptation).
   */
  maxConcurrency?: number;
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
  /** Transactions the writer lets run at once right now (`concurrency` or `maxConcurrency`). */
  limit: number;
  /** Moving average of the deliveries outstanding (queued or in flight) when one is submitted: the load the limit follows. */
  demand: number;
}

/**
 * Group commit: concurrent requests share one transaction, and each caller's promise settles only after that
 * transaction has committed, so a 200 always means durable. While one transaction flushes, the next batch
 * gathers, so batches grow with load and cost nothing when idle.
 *
 * How batches form (bench/peer.bench.ts measures it against Emmett at 8 and 64 appenders). A `ledger_append` call
 * has a fixed PostgreSQL cost of about 0.6 ms of CPU besides about 0.08 ms per delivery, so the writer avoids
 * small transactions whenever larger ones can be had without waiting longer:
 * - An idle writer starts a lone delivery at once. Otherwise batches start one turn of the event loop after
 *   the submit or the commit that made room (`schedulePump`): the callers a commit answered, and the requests
 *   read in the same poll phase, then go together instead of the first one alone.
 * - While transactions are in flight, a new one starts only for at least half as many deliveries as they carry
 *   on average; fewer wait for the next commit. (Before, with 64 appenders, one slot carried a batch of about 60
 *   while the other ran batches of one, 11 deliveries per transaction on average; now about 23.)
 * - What is queued is shared out over the free slots in parts of at least SPLIT_MIN, so that under load one
 *   batch is written while the other commits, and 8 appenders share one transaction instead of 2-3.
 *
 * The number of transactions in flight can also adapt to the load (`maxConcurrency`), measured as the deliveries
 * outstanding (queued or in a transaction) each time one is submitted, averaged. While that average is at most
 * twice `maxConcurrency`, up to `maxConcurrency` transactions run, each delivery mostly in its own, their commit
 * flushes shared by PostgreSQL's WAL writer; under load the limit is `concurrency`. This pays off only where
 * commits wait on the disk: where the CPU is the limit, more and smaller transactions are slower (the fixed cost
 * above), which is why the service leaves it off by default (LEDGER_INGEST_MAX_CONCURRENCY 2). The batch size is
 * not the signal: eager small transactions make small batches, which would keep the limit high under load.
 * Order and dedupe do not depend on any of this: `ledger_append` locks stream heads and dedupe keys in sorted
 * order, whatever the number of transactions.
 */
export class GroupCommitWriter {
  private readonly queue: Waiter[] = [];
  /** Records nobody waits on (`ride`): they join the next batch of `queue`, or go alone after their linger. */
  private readonly riders: Waiter[] = [];
  private riderTimer: NodeJS.Timeout | null = null;
  private riderLingerMs = 0;
  /** Set by `settle`: passengers then go at once instead of waiting out their linger. */
  private settling = false;
  /** Transactions in flight, each settled only once the next batch (if any) has been started. */
  private readonly flushes = new Set<Promise<void>>();
  private inFlight = 0;
  /** When the database last answered a batch (committed or refused it): the ingest deadline counts from here. */
  private lastAnswerAt = 0;
  private lingerTimer: NodeJS.Timeout | null = null;
  /** A pump due at the end of this turn of the event loop (see `schedulePump`). */
  private pumpSoon: NodeJS.Immediate | null = null;
  private readonly concurrency: number;
  private readonly maxConcurrency: number;
  /** Deliveries in a transaction now (the queue holds the others). */
  private recordsInFlight = 0;
  /** Of those, the submitted ones (not passengers): what a new transaction's size is weighed against. */
  private submittedInFlight = 0;
  private demand = 0;
  readonly stats: GroupCommitStats;
  onBatch?: (size: number, seconds: number) => void;

  constructor(
    private readonly store: EventStoreRepository,
    private readonly options: GroupCommitOptions,
  ) {
    this.concurrency = options.concurrency ?? 2;
    this.maxConcurrency = Math.max(this.concurrency, options.maxConcurrency ?? this.concurrency);
    this.stats = { batches: 0, records: 0, queued: 0, inFlight: 0, retries: 0, limit: this.concurrency, demand: 0 };
  }

  /** See the class comment: extra transactions only while the average load is low. */
  private get limit(): number {
    return this.demand <= 2 * this.maxConcurrency ? this.maxConcurrency : this.concurrency;
  }

  /** An average over about the last 32 submissions: one burst or one lull does not flip the limit. */
  private sampleDemand(): void {
    const outstanding = this.queue.length + this.recordsInFlight;
    this.demand += (outstanding - this.demand) / 32;
    this.stats.demand = this.demand;
  }

  get depth(): number {
    return this.queue.length;
  }

  submit(record: WebhookRecord): Promise<AppendOutcome> {
    if (this.queue.length >= this.options.queueMax) {
      return Promise.reject(unavailable('ingest queue is full, retry shortly', 1));
    }
    return this.enqueue(record, this.queue, this.options.deadlineMs ?? 0);
  }

  /**
   * For a record nobody is waiting on (tee mode's answers, written after the provider has its reply): it rides
   * in the transaction of the next batch of submitted records, and takes a transaction of its own only when no
   * batch has started within `lingerMs`. A transaction of its own would cost its fixed share of CPU and a WAL
   * flush just when the deliveries' commits, which hold up calls, need them; a passenger costs one more row set
   * in a transaction that commits anyway. It waits up to `deadlineMs` for a silent database (nobody is held up).
   */
  ride(record: WebhookRecord, o: { lingerMs: number; deadlineMs: number }): Promise<AppendOutcome> {
    if (this.riders.length >= this.options.queueMax) {
      return Promise.reject(unavailable('ingest queue is full, retry shortly', 1));
    }
    this.riderLingerMs = o.lingerMs;
    return this.enqueue(record, this.riders, o.deadlineMs);
  }

  private enqueue(record: WebhookRecord, queue: Waiter[], deadlineMs: number): Promise<AppendOutcome> {
    return new Promise<AppendOutcome>((resolve, reject) => {
      if (deadlineMs <= 0) {
        queue.push({ record, at: performance.now(), resolve, reject });
        if (queue === this.queue) this.sampleDemand();
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
          const queued = queue.indexOf(waiter);
          if (queued >= 0) queue.splice(queued, 1);
          this.stats.queued = this.queue.length;
          reject(unavailable('the database did not answer in time, retry shortly', 1));
        };
        timer = setTimeout(check, deadlineMs);
        queue.push(waiter);
        if (queue === this.queue) this.sampleDemand();
      }
      // An idle writer starts a lone record at once; otherwise what is submitted in this turn goes together.
      if (this.inFlight === 0 && this.pumpSoon === null) this.pump();
      else this.schedulePump();
    });
  }

  /**
   * A pump once this turn of the event loop is over: callers answered by a commit submit their next records in
   * its continuations, and requests whose bytes came with the commit's are parsed in the same poll phase. Pumping
   * at each of them would send the first one or two alone (a transaction's fixed cost for one record) and queue
   * the rest behind it.
   */
  private schedulePump(): void {
    this.pumpSoon ??= setImmediate(() => {
      this.pumpSoon = null;
      this.pump();
    });
  }

  /** Riders waiting longer than their linger, with no batch of submitted records to join, go alone. */
  private pumpRiders(): void {
    while (this.riders.length > 0 && this.queue.length === 0 && this.inFlight < this.limit) {
      const waited = performance.now() - this.riders[0]!.at;
      if (waited < this.riderLingerMs && !this.settling) {
        this.riderTimer ??= setTimeout(() => {
          this.riderTimer = null;
          this.pump();
        }, this.riderLingerMs - waited);
        return;
      }
      this.start(this.riders.splice(0, this.options.batchMax), 0);
    }
  }

  /** `submitted`: how many of the batch are submitted records (the rest are passengers). */
  private start(batch: Waiter[], submitted: number): void {
    this.inFlight += 1;
    this.recordsInFlight += batch.length;
    this.submittedInFlight += submitted;
    const done: Promise<void> = this.flush(batch).finally(() => {
      this.inFlight -= 1;
      this.recordsInFlight -= batch.length;
      this.submittedInFlight -= submitted;
      this.flushes.delete(done);
      // At shutdown `settle` waits on the flushes it sees: the next batch must be among them already.
      if (this.settling) this.pump();
      else this.schedulePump();
    });
    this.flushes.add(done);
  }

  /**
   * At shutdown: the passengers still lingering go now, and this resolves once every queued record has been
   * written or refused, so that a clean stop loses no answer that the database could still take.
   */
  async settle(): Promise<void> {
    this.settling = true;
    this.pump();
    while (this.flushes.size > 0) await Promise.allSettled([...this.flushes]);
  }

  private pump(): void {
    const linger = this.options.lingerMs ?? 0;
    while (this.inFlight < this.limit && this.queue.length > 0) {
      const waited = performance.now() - this.queue[0]!.at;
      if (linger > 0 && this.queue.length < this.options.batchMax && waited < linger) {
        this.lingerTimer ??= setTimeout(() => {
          this.lingerTimer = null;
          this.pump();
        }, linger - waited);
        break;
      }
      // A few records while others are in flight wait for a commit and join the next batch: a transaction of
      // their own would pay its fixed cost (about 0.6 ms of PostgreSQL CPU) for them alone, and the slot it
      // takes would keep the large batch that follows waiting.
      // Passengers do not count: a delivery must not wait behind the answers riding with the one before it.
      if (this.inFlight > 0 && this.queue.length * 2 < this.submittedInFlight / this.inFlight) break;
      if (this.lingerTimer) {
        // A full batch goes now; what stays queued starts a window of its own.
        clearTimeout(this.lingerTimer);
        this.lingerTimer = null;
      }
      // What is queued is shared out over the free slots (one batch then commits while the next is written), in
      // parts of at least SPLIT_MIN: smaller ones would each pay the fixed cost (20 queued go as one batch, not as
      // 16 and 4 that waits). At low load with `maxConcurrency` the point is the opposite, a transaction per
      // delivery, so there every free slot takes its share.
      const free = this.limit - this.inFlight;
      const least = this.limit > this.concurrency ? 1 : SPLIT_MIN;
      const parts = Math.max(1, Math.min(free, Math.floor(this.queue.length / least)));
      const size = Math.min(this.options.batchMax, Math.ceil(this.queue.length / parts));
      const batch = this.queue.splice(0, size);
      const submitted = batch.length;
      // Passengers after the records that hold up callers: their rows come last in the transaction.
      if (this.riders.length > 0) batch.push(...this.riders.splice(0, this.options.batchMax));
      this.start(batch, submitted);
    }
    this.pumpRiders();
    this.stats.queued = this.queue.length;
    this.stats.inFlight = this.inFlight;
    this.stats.limit = this.limit;
  }

  private async flush(batch: Waiter[]): Promise<void> {
    const started = performance.now();
    try {
      // A deadlock or a cancelled statement says nothing about the records: the same batch is run again, and
      // an authentic delivery is never filed as unrecognized because of a lock.
      const outcomes = await onTransientRetry(() => this.store.appendBatch(batch.map((w) => w.record)), {
        retries: this.options.transientRetries ?? 3,
        baseMs: this.options.retryBaseMs ?? 50,
        onFailure: (err, willRetry) => {
          if (!isConnectionError(err)) this.lastAnswerAt = Date.now();
          if (willRetry) this.stats.retries += 1;
        },
      });
      this.lastAnswerAt = Date.now();
      batch.forEach((w, i) => w.resolve(outcomes[i]!));
      this.stats.batches += 1;
      this.stats.records += batch.length;
      this.onBatch?.(batch.length, (performance.now() - started) / 1000);
    } catch (err) {
      if (isTransientError(err)) {
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

/**
 * Runs `fn` again after a transient error (`isTransientError`: deadlock, cancel, lock timeout...), at most
 * `retries` times, after `baseMs`, 2·`baseMs`, 4·`baseMs`… each stretched by a random factor in [1, 2) so that
 * writers that collided do not collide again. Anything else, or the last transient error, is thrown as it is.
 */
const onTransientRetry = <T>(
  fn: () => Promise<T>,
  o: { retries: number; baseMs: number; onFailure?: (err: unknown, willRetry: boolean) => void },
): Promise<T> =>
  pRetry(fn, {
    retries: o.retries,
    minTimeout: o.baseMs,
    factor: 2,
    randomize: true,
    onFailedAttempt: ({ error, retriesLeft }) => o.onFailure?.(error, retriesLeft > 0 && isTransientError(error)),
    shouldRetry: ({ error }) => isTransientError(error),
  });

/** Runs `fn` again after a transient error, at most `retries` times; past them the caller gets a 503 error. */
export const retryTransient = async <T>(fn: () => Promise<T>, retries = 3, baseMs = 50): Promise<T> => {
  try {
    return await onTransientRetry(fn, { retries, baseMs });
  } catch (err) {
    if (isTransientError(err)) throw unavailable(`database busy (${(err as { code?: string }).code}), retry shortly`, 1);
    throw err;
  }
};
