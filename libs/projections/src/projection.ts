import type { Kysely, Transaction } from 'kysely';
import type { DB } from '@lib/db';
import type { LedgerEvent } from '@lib/ledger';

export type Executor = Kysely<DB> | Transaction<DB>;

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
  handle(trx: Transaction<DB>, events: readonly LedgerEvent[], g: number): Promise<void>;
  /**
   * Optional fast path for a rebuild: fold every event of transactions below `belowXid` (all finished) into
   * generation `g` in whatever order suits the projection, in short transactions of its own. The rebuild then
   * carries on with `handle` from that boundary, so the result must equal replaying those events in order.
   */
  bulkLoad?(db: Kysely<DB>, g: number, belowXid: string): Promise<void>;
}
