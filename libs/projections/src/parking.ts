import { sql, type Transaction } from 'kysely';
import type { DB } from '@lib/db';
import type { LedgerEvent } from '@lib/ledger';
import { parkEvent } from './checkpoints.js';
import { cursorOf, type Cursor } from './event-reader.js';
import { isDataError, type ProjectionDefinition } from './projection.js';

const truncate = (text: string, max = 2000) => (text.length > max ? `${text.slice(0, max)}…` : text);

export interface ParkingHooks {
  log: (level: 'log' | 'warn' | 'error', message: string) => void;
  onParked?: (projection: string, position: string) => void;
}

export type Apply = (trx: Transaction<DB>, events: readonly LedgerEvent[], upTo?: Cursor) => Promise<void>;

/**
 * Applies the batch in a savepoint. When it fails on the data, the savepoint is rolled back and the batch is
 * halved until the culprits stand alone; each is parked, the others applied, and the caller moves the
 * checkpoint past them all. The halves are applied in commit order, and a batch's effect does not depend on
 * how the events are cut into batches (the live loop cuts them anywhere), so the result is that of the batch
 * without its culprits. A transient error is thrown as before: the whole transaction rolls back and retries.
 * Returns how many events were parked.
 */
export const applyOrPark = async (
  hooks: ParkingHooks,
  trx: Transaction<DB>,
  p: ProjectionDefinition,
  g: number,
  events: readonly LedgerEvent[],
  apply: Apply,
  isolating = false,
): Promise<number> => {
  if (events.length === 0) return 0;
  await sql`SAVEPOINT projector_apply`.execute(trx);
  let failure: unknown;
  try {
    await apply(trx, events, isolating ? cursorOf(events.at(-1)!) : undefined);
    await sql`RELEASE SAVEPOINT projector_apply`.execute(trx);
    return 0;
  } catch (err) {
    if (!isDataError(err)) throw err;
    failure = err;
  }
  await sql`ROLLBACK TO SAVEPOINT projector_apply`.execute(trx);
  await sql`RELEASE SAVEPOINT projector_apply`.execute(trx);
  // A lone event is judged with its predecessors only before it is blamed: a later event of its leg, already
  // committed but not yet applied, may be the culprit.
  if (events.length === 1 && !isolating) return applyOrPark(hooks, trx, p, g, events, apply, true);
  if (events.length === 1) {
    await park(hooks, trx, p, g, events[0]!, failure);
    return 1;
  }
  const mid = Math.ceil(events.length / 2);
  return (
    (await applyOrPark(hooks, trx, p, g, events.slice(0, mid), apply, true)) +
    (await applyOrPark(hooks, trx, p, g, events.slice(mid), apply, true))
  );
};

const park = async (hooks: ParkingHooks, trx: Transaction<DB>, p: ProjectionDefinition, g: number, event: LedgerEvent, err: unknown): Promise<void> => {
  const message = truncate((err as Error).message ?? String(err));
  await parkEvent(trx, p.name, g, event, message);
  hooks.log('warn', `projection ${p.name}: parked event ${event.position} (${event.type}) of generation ${g}: ${message}`);
  hooks.onParked?.(p.name, event.position);
};
