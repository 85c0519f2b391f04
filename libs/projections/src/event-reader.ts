import { sql, type RawBuilder } from 'kysely';
import { readLegEvents as readLegEventsKept, type Cursor, type Executor } from '@lib/event-store';
import type { LedgerEvent } from '@lib/ledger';

// The store's reads live in libs/event-store (event-reader.ts), the only owner of the store's tables; what is
// here is the projections' side of them: which events a projection parked.
export { childLegsNamedIn, COLUMNS, compareCursors, cursorOf, headPosition, isCurrentTranslation, legStreamNamesAfter, readAfter, readStreamRange, readTypeInStreams, receiptOf, retranslatedReceipts, START, toLedgerEvent, type Cursor, type EventRow } from '@lib/event-store';

/**
 * Events that `projection` parked in generation `g` (projection_parked): a read of a leg's other events
 * leaves them out, so that a parked event does not break every later batch that touches its leg.
 */
export const notParked = (projection: string, g: number, alias = 'events'): RawBuilder<unknown> =>
  sql`NOT EXISTS (SELECT 1 FROM projection_parked pk WHERE pk.projection = ${projection} AND pk.generation = ${g}
    AND pk.position = ${sql.ref(`${alias}.global_position`)})`;

/** Every event of the given leg streams plus the parent-side events that name these legs as children (parked ones left out). */
export const readLegEvents = (
  db: Executor,
  streams: readonly string[],
  childIds: readonly string[],
  known: readonly string[],
  parked: { projection: string; generation: number },
  upTo?: Cursor,
): Promise<LedgerEvent[]> => readLegEventsKept(db, streams, childIds, known, notParked(parked.projection, parked.generation), upTo);
