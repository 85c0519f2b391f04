import type { Transaction } from 'kysely';
import type { DB } from '@lib/db';
import type { LedgerEvent } from '@lib/ledger';
import type { Cursor } from './event-reader.js';
import type { LiveBatch, ProjectionDefinition } from './projection.js';
import { bulkLoad } from './call-legs/loader.js';
import { CALL_LEGS, createGeneration, dropGeneration, publish } from './call-legs/schema.js';
import { LIVE, projectLegs } from './call-legs/writer.js';
import { abandoned, committed } from './call-legs/fold-cache.js';

export { TALK_EDGES_SQL } from './call-legs/rollups.js';

/**
 * Call legs, their trees and their recordings. For every leg a batch touches, the row is recomputed from
 * all of that leg's events plus the parent-side events that name it (a pure function of the set of events,
 * so delivery order and duplicates cannot change it): live, by applying the batch's events to the leg's fold
 * state, which gives the same row (writer.ts); then roots and depths are healed where a leg is new or moved.
 *
 * By concern, in ./call-legs/: schema (generation tables, views), writer (a batch's legs and recordings), trees
 * (roots and depths), rollups (hourly cells), loader (the rebuild's bulk path).
 */
export const callLegsProjection: ProjectionDefinition = {
  name: CALL_LEGS,
  // 2: hourly rollups for the analytics. 3: the coarse (hour, provider, status) rollup beside them.
  // 4: legs report out-of-bounds numbers (invalid_fields) instead of projecting them, and the rollups keep
  // the talk-time extremes (talk_min_ms, talk_max_ms) that bound the quantile estimates.
  //    Each leg's verification (verified / imported / unverified), from its events' receipts.
  //    Provider dialect rules (issue 11): Twilio `completed` is answered, AMD proves an answer, the dialled leg's
  // SIP code stays on the child, hangup side, end reason detail, AMD detail, time sources, start implied by
  // end - duration, PDD.
  // 5: the coarse rollup by UTC day (call_provider_daily) for long analytics windows; the trigram index on
  // from/to for the number substring search (call-legs.query-indexes.ts).
  // 6: the legs carry the live fold state (fold, libs/ledger call-leg-fold.ts) while they are in progress, and a
  // live batch applies its events to it instead of reading and folding every event of each touched leg again.
  // 7: the legs' (started_at DESC, provider, call_id) index dropped: the page index (started_at DESC NULLS LAST,
  // provider, call_id) serves every reader of it, and the live upsert wrote both (bench/profile-notes.md).
  // 8: the legs keep the hashed 5-grams of both numbers (number_grams, a stored generated column) under a GIN index,
  // which a needle of 5 characters or more asks instead of the trigrams (call-legs.query-indexes.ts).
  version: 8,

  createGeneration,
  publish,
  dropGeneration,

  handle(trx: Transaction<DB>, events: readonly LedgerEvent[], g: number, upTo?: Cursor, live?: LiveBatch) {
    return projectLegs(trx, events, g, LIVE, upTo, live);
  },
  committed,
  abandoned,

  bulkLoad,
};
