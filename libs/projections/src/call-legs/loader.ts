import pRetry from 'p-retry';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { DB } from '@lib/db';
import { compareCursors, cursorOf, legStreamNamesAfter, readStreamRange } from '../event-reader.js';
import { isDataError, type Isolate } from '../projection.js';
import { rollupsFromScratch } from './rollups.js';
import { afterLoadIndexes, dropAfterLoadIndexes, ROLLUPS, tablesOf } from './schema.js';
import { healAllTrees } from './trees.js';
import { BULK, BULK_ISOLATED, projectLegs } from './writer.js';

/**
 * Rebuild by stream rather than by position: every leg is computed once from its whole stream, and trees
 * and rollups are derived once at the end instead of after every batch.
 */
export async function bulkLoad(db: Kysely<DB>, g: number, belowXid: string, isolate: Isolate): Promise<void> {
  await prepareForLoad(db, g);
  // Pages of streams by name; BULK_WORKERS of them so that PostgreSQL reads and writes pages while Node folds another.
  let last = '';
  let pages = Promise.resolve<{ first: string; last: string } | null>(null);
  const nextPage = () =>
    (pages = pages.then(async () => {
      const page = await legStreamNamesAfter(db, last, BULK_STREAMS);
      if (page.length === 0) return null;
      const range = { first: page[0]!, last: page.at(-1)! };
      last = range.last;
      return range;
    }));
  // Workers pulling pages as they are found (the next page starts after the last name of the previous one), not a
  // pool over a list known in advance: p-limit has nothing to map over here.
  const worker = async () => {
    for (let range = await nextPage(); range; range = await nextPage()) {
      const { first, last: end } = range;
      const read = (trx: Transaction<DB>) => readStreamRange(trx, first, end, belowXid);
      try {
        await retryOnDeadlock(() =>
          db.transaction().execute(async (trx) => projectLegs(trx, await read(trx), g, BULK)),
        );
      } catch (err) {
        if (!isDataError(err)) throw err;
        // A poison event in the page: the projector parks what cannot be applied alone. Sub-batches hold part
        // of a stream, so they read the rest of each leg like the live loop does.
        await retryOnDeadlock(() =>
          db.transaction().execute(async (trx) => {
            // In commit order, so that each event is judged with its predecessors (upTo), as the live loop does.
            const events = (await read(trx)).sort((a, b) => compareCursors(cursorOf(a)!, cursorOf(b)!));
            await isolate(trx, events, (t, sub, upTo) => projectLegs(t, sub, g, BULK_ISOLATED, upTo));
          }),
        );
      }
    }
  };
  await Promise.all(Array.from({ length: BULK_WORKERS }, worker));
  // Roots and depths, and each rollup, are derived from the loaded legs independently of each other (a rollup
  // reads is_root from parent_call_id, not from the heal): side by side, each on a connection of its own.
  const derive = (f: (trx: Transaction<DB>) => Promise<void>) =>
    db.transaction().execute(async (trx) => {
      await sql`SET LOCAL work_mem = ${sql.lit(BULK_WORK_MEM)}`.execute(trx);
      await f(trx);
    });
  await Promise.all([derive((trx) => healAllTrees(trx, g)), ...ROLLUPS.map((spec) => derive((trx) => rollupsFromScratch(trx, g, spec)))]);
  await finishLoad(db, g);
}

/** For the few whole-generation statements at the end: sorts and hashes of a million legs in memory, not on disk. */
const BULK_WORK_MEM = '256MB';

/**
 * Generation g is read by nobody until the switch-over, and a crash before then leaves it to be dropped by the
 * next rebuild: so its tables are loaded UNLOGGED (no WAL per row, per index entry, per tree-heal update), with
 * only the indexes the load itself reads, and are made LOGGED (one sequential copy into the WAL, which also leaves
 * behind the heal's dead row versions) and indexed (one sorted build each) before the commit-order replay, which
 * runs like the live loop and needs every index.
 */
const prepareForLoad = async (db: Kysely<DB>, g: number) => {
  await dropAfterLoadIndexes(db, g);
  for (const t of tablesOf(g)) await sql`ALTER TABLE ${sql.table(t)} SET UNLOGGED`.execute(db);
};

const finishLoad = async (db: Kysely<DB>, g: number) => {
  // Two at a time: the tables, then the index builds, are independent of each other.
  const inPairs = async <T>(items: readonly T[], f: (item: T, trx: Transaction<DB>) => Promise<unknown>) => {
    const queue = [...items];
    const lane = () =>
      db.transaction().execute(async (trx) => {
        await sql`SET LOCAL maintenance_work_mem = ${sql.lit(BULK_WORK_MEM)}`.execute(trx);
        for (let item = queue.shift(); item !== undefined; item = queue.shift()) await f(item, trx);
      });
    await Promise.all([lane(), lane()]);
  };
  await inPairs(tablesOf(g), (t, trx) => sql`ALTER TABLE ${sql.table(t)} SET LOGGED`.execute(trx));
  await inPairs(afterLoadIndexes(g), (create, trx) => create.execute(trx));
};

const BULK_STREAMS = 2000;
/**
 * PostgreSQL does about three times Node's work per event (reading, writing), so with two workers one of the
 * two cores often waited on the other; a third keeps both busy. More only adds deadlock retries.
 */
const BULK_WORKERS = 3;

/** Two bulk workers may both write a child leg that its parent's page names; PostgreSQL then aborts one of them. */
const retryOnDeadlock = (f: () => Promise<void>): Promise<void> =>
  pRetry(f, { retries: 4, minTimeout: 10, factor: 2, randomize: true, shouldRetry: ({ error }) => (error as { code?: string }).code === '40P01' });
