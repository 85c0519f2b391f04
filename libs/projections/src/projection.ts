import type { Kysely, Transaction } from 'kysely';
import type { DB } from '@lib/db';
import type { LedgerEvent } from '@lib/ledger';
import type { Cursor } from './event-reader.js';

export type Executor = Kysely<DB> | Transaction<DB>;

/** What the live loop tells a batch about itself. */
export interface LiveBatch {
  /** The checkpoint the batch starts from. */
  from: Cursor;
  /**
   * The batch is full: more events wait behind it (a backlog, an import landing). A projection that keeps state in
   * memory for the next live batches may keep less of it while this lasts.
   */
  behind: boolean;
}

/**
 * A projection owns generation tables (`<table>_g<N>`) published behind views. `handle` folds a batch of
 * events (in commit order) into generation `g`, inside the transaction that also moves the checkpoint.
 */
export interface ProjectionDefinition {
  readonly name: string;
  /** Bump to rebuild from the first event at the next start (blue-green, queries keep being answered). */
  readonly version: number;
  createGeneration(db: Executor, g: number): Promise<void>;
  /** Repoints the public views at generation `g` (called inside the switch-over transaction). */
  publish(trx: Transaction<DB>, g: number): Promise<void>;
  dropGeneration(db: Executor, g: number): Promise<void>;
  /**
   * `upTo`, when given, is the commit-order point of the batch's last event: read no other event past it. The
   * projector passes it while isolating a poison event, so that an event is judged with its predecessors only,
   * not blamed for a later event of its leg that has not been applied yet.
   */
  handle(trx: Transaction<DB>, events: readonly LedgerEvent[], g: number, upTo?: Cursor, live?: LiveBatch): Promise<void>;
  /**
   * The live loop's batch bookkeeping, for a projection that keeps state between batches in memory: `handle` is given
   * `live` (the checkpoint the batch starts from, and whether the live loop is behind) by the live loop only;
   * `committed` follows that batch's commit (the checkpoint now at `next`), `abandoned` a transaction of the live
   * loop that did not commit.
   */
  committed?(g: number, next: Cursor): void;
  abandoned?(g: number): void;
  /**
   * Optional fast path for a rebuild: fold every event of transactions below `belowXid` (all finished) into
   * generation `g` in whatever order suits the projection, in short transactions of its own. The rebuild then
   * carries on with `handle` from that boundary, so the result must equal replaying those events in order.
   */
  bulkLoad?(db: Kysely<DB>, g: number, belowXid: string, isolate: Isolate): Promise<void>;
}

/**
 * Applies `events` with `apply` inside `trx`, and when that fails on the data (isDataError), finds the events
 * that cannot be applied even alone, parks them (projection_parked) and applies the rest. Given to bulkLoad
 * so that a bulk page with a poison event in it is not lost either.
 */
export type Isolate = (
  trx: Transaction<DB>,
  events: readonly LedgerEvent[],
  apply: (trx: Transaction<DB>, events: readonly LedgerEvent[], upTo?: Cursor) => Promise<void>,
) => Promise<number>;

/**
 * A failure of the projection's own (pure) code on an event's content: as deterministic as a constraint
 * violation, so the event is parked instead of retried for ever.
 */
export class ProjectionDataError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ProjectionDataError';
  }
}

/**
 * True when retrying cannot help: the statement was refused for the data it carried. SQLSTATE class 22 (data
 * exception: out of range, invalid text for the type, overflow...) and 23 (integrity constraint: NOT NULL,
 * unique, check), or a ProjectionDataError. Everything else (connection loss: no SQLSTATE; 40001 serialization,
 * 40P01 deadlock, 57014 cancel, 53xxx resources, 08xxx connection...) is transient and retried, never parked.
 */
export const isDataError = (err: unknown): boolean => {
  if (err instanceof ProjectionDataError) return true;
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' && /^2[23][0-9A-Z]{3}$/.test(code);
};
