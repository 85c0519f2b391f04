import { sql, type Kysely, type Transaction } from 'kysely';
import type { DB } from '@lib/db';
import { COLUMNS, compareCursors, cursorOf, toLedgerEvent, type EventRow } from '../event-reader.js';
import { isDataError, type Isolate } from '../projection.js';
import { rollupsFromScratch } from './rollups.js';
import { healAllTrees } from './trees.js';
import { BULK, BULK_ISOLATED, projectLegs } from './writer.js';

/**
 * Rebuild by stream rather than by position: every leg is computed once from its whole stream, and trees
 * and rollups are derived once at the end instead of after every batch.
 */
export async function bulkLoad(db: Kysely<DB>, g: number, belowXid: string, isolate: Isolate): Promise<void> {
  // Pages of streams by name; two workers so that PostgreSQL reads one page while Node folds another.
  let last = '';
  let pages = Promise.resolve<{ first: string; last: string } | null>(null);
  const nextPage = () =>
    (pages = pages.then(async () => {
      const page = await sql<{ stream_name: string }>`
        SELECT stream_name FROM streams WHERE stream_name > ${last} AND stream_name LIKE 'callLeg-%'
        ORDER BY stream_name LIMIT ${BULK_STREAMS}`.execute(db);
      if (page.rows.length === 0) return null;
      const range = { first: page.rows[0]!.stream_name, last: page.rows.at(-1)!.stream_name };
      last = range.last;
      return range;
    }));
  const worker = async () => {
    for (let range = await nextPage(); range; range = await nextPage()) {
      const { first, last: end } = range;
      // A name range rather than a list: one index range scan over the page's streams.
      const read = (trx: Transaction<DB>) => sql<EventRow>`
        SELECT ${COLUMNS} FROM events
        WHERE stream_name >= ${first} AND stream_name <= ${end} AND transaction_id < ${belowXid}::xid8`.execute(trx);
      try {
        await retryOnDeadlock(() =>
          db.transaction().execute(async (trx) => projectLegs(trx, (await read(trx)).rows.map(toLedgerEvent), g, BULK)),
        );
      } catch (err) {
        if (!isDataError(err)) throw err;
        // A poison event in the page: the projector parks what cannot be applied alone. Sub-batches hold part
        // of a stream, so they read the rest of each leg like the live loop does.
        await retryOnDeadlock(() =>
          db.transaction().execute(async (trx) => {
            // In commit order, so that each event is judged with its predecessors (upTo), as the live loop does.
            const events = (await read(trx)).rows.map(toLedgerEvent).sort((a, b) => compareCursors(cursorOf(a)!, cursorOf(b)!));
            await isolate(trx, events, (t, sub, upTo) => projectLegs(t, sub, g, BULK_ISOLATED, upTo));
          }),
        );
      }
    }
  };
  await Promise.all([worker(), worker()]);
  await db.transaction().execute(async (trx) => {
    await healAllTrees(trx, g);
    await rollupsFromScratch(trx, g);
  });
}

const BULK_STREAMS = 2000;

/** Two bulk workers may both write a child leg that its parent's page names; PostgreSQL then aborts one of them. */
const retryOnDeadlock = async (f: () => Promise<void>): Promise<void> => {
  for (let attempt = 1; ; attempt++) {
    try {
      return await f();
    } catch (err) {
      if ((err as { code?: string }).code !== '40P01' || attempt >= 5) throw err;
    }
  }
};
