import { sql, type Kysely, type RawBuilder, type Transaction } from 'kysely';
import { mapInSlices, type DB } from '@lib/db';
import { EventVersionError, parseEvent, receiptVerification, type ParsedEvent, type LedgerEvent, type LegParty, type Provider } from '@lib/ledger';
import { isCurrentTranslation } from './retranslation.repository.js';

/**
 * The store's reads in commit order, for the projections: events after a cursor, the events of given legs, the
 * head. Each event is read through `parseEvent` (libs/ledger event-schemas.ts): its data upcast from the version it
 * was written in.
 */
export type Executor = Kysely<DB> | Transaction<DB>;

export interface Cursor {
  xid: string;
  position: string;
}

export const START: Cursor = { xid: '0', position: '0' };

interface Row {
  global_position: string;
  transaction_id: string;
  /** Absent from reads that do not select it (older callers' column lists). */
  receipt_id?: string;
  event_id: string;
  type: string;
  schema_version: number;
  data: unknown;
  metadata: Record<string, unknown>;
  /** ISO-8601 UTC with milliseconds, formatted by PostgreSQL (see COLUMNS). */
  occurred_at: string | null;
  received_at: string;
  /** The receipt's signature_status (see COLUMNS). */
  signature_status: string | null;
}

export type EventRow = Row;

/** Where each event read from the store sits in commit order (kept beside it, not in the domain's event type). */
const cursors = new WeakMap<LedgerEvent, Cursor>();
export const cursorOf = (e: LedgerEvent): Cursor | undefined => cursors.get(e);
/** Commit order: (transaction id, position), both compared as numbers. */
export const compareCursors = (a: Cursor, b: Cursor): number => {
  const x = BigInt(a.xid) - BigInt(b.xid) || BigInt(a.position) - BigInt(b.position);
  return x < 0n ? -1 : x > 0n ? 1 : 0;
};

/** The receipt each event read from the store came from (its translation may have been superseded since). */
const receipts = new WeakMap<LedgerEvent, string>();
export const receiptOf = (e: LedgerEvent): string | undefined => receipts.get(e);

export const toLedgerEvent = (r: Row): LedgerEvent => {
  const e = toEvent(r);
  cursors.set(e, { xid: String(r.transaction_id), position: String(r.global_position) });
  if (r.receipt_id !== undefined) receipts.set(e, String(r.receipt_id));
  return e;
};

/**
 * Which of these receipts were translated again (receipt_translations): their events in a batch are a new
 * translation, and a reader that kept the leg's earlier events (an incremental fold) must read the leg again.
 */
export const retranslatedReceipts = async (db: Executor, receiptIds: readonly string[]): Promise<Set<string>> => {
  if (receiptIds.length === 0) return new Set();
  const r = await sql<{ receipt_id: string }>`
    SELECT DISTINCT receipt_id::text AS receipt_id FROM receipt_translations WHERE receipt_id = ANY (${receiptIds}::bigint[])`.execute(db);
  return new Set(r.rows.map((x) => x.receipt_id));
};

/**
 * A type or a version this code does not know (only a newer release, rolled back since, or a write around the
 * append path can store one) is, to this code, an unrecognized event: the leg it names still exists, nothing is
 * read from its data (a guess could project a wrong outcome), and the projections go on.
 */
const typed = (type: string, version: number, data: unknown): Pick<LedgerEvent, 'type' | 'data'> => {
  let p: ParsedEvent;
  try {
    p = parseEvent(type, version, data);
  } catch (err) {
    if (!(err instanceof EventVersionError)) throw err;
    return { type: 'UnrecognizedWebhook', data: { reason: err.message } };
  }
  return p.known ? { type: p.type, data: p.data } : { type: 'UnrecognizedWebhook', data: { reason: `event type ${p.type} is unknown to this version` } };
};

const toEvent = (r: Row): LedgerEvent => {
  const m = (r.metadata ?? {}) as Record<string, unknown>;
  return {
    position: String(r.global_position),
    eventId: r.event_id,
    ...typed(r.type, r.schema_version, r.data),
    provider: m.provider as Provider,
    legId: (m.legId as string | null) ?? null,
    accountId: (m.accountId as string | null) ?? null,
    parentLegId: (m.parentLegId as string | null) ?? null,
    party: (m.party as LegParty | null) ?? null,
    providerSeq: (m.providerSeq as number | null) ?? null,
    occurredAt: r.occurred_at,
    sentAt: (m.sentAt as string | null) ?? null,
    receivedAt: r.received_at,
    verification: receiptVerification(m.source as string | undefined, r.signature_status),
  };
};

// Times leave PostgreSQL already in Date#toISOString()'s spelling: a rebuild reads millions of them, and parsing
// each into a Date only to print it again was a tenth of the rebuild's CPU.
const iso = (column: string) => sql.raw(`to_char(${column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS ${column}`);
// The receipt's signature status is not in the hashed metadata (only `source` is), so it is read from the receipt
// itself; a subquery rather than a join keeps every `SELECT <COLUMNS> FROM events` as it is. An import is
// `imported` whatever its receipt says, so only live events pay for the lookup (a backfilled store rebuilds at the
// old speed; a 200,000-event rebuild of imports went from 10,900 to 5,300-7,500 events/s with the lookup on all).
// An event is in its receipt's month (both partitioned by received_at, the appends write the receipt's on its
// events): matching received_at too prunes the lookup to that one partition instead of probing every month's.
export const COLUMNS = sql`global_position, transaction_id::text AS transaction_id, receipt_id, event_id, type, schema_version, data, metadata, ${iso('occurred_at')}, ${iso('received_at')},
  CASE WHEN metadata->>'source' = 'import' THEN 'not-checked'
    ELSE (SELECT r.signature_status FROM webhook_receipts r WHERE r.id = events.receipt_id AND r.received_at = events.received_at) END AS signature_status`;

/**
 * Commit-order read: (transaction id, position) after the cursor, and only below the oldest transaction
 * still in flight, so an event whose transaction commits late is never skipped (docs/architecture.md, "Design sources").
 * ORDER BY names the table's columns: a bare `transaction_id` would mean the text alias in the select list,
 * which sorts '10' before '9', sorts outside the index, and lets the cursor jump over events.
 */
export const readAfter = async (db: Executor, cursor: Cursor, limit: number): Promise<{ events: LedgerEvent[]; next: Cursor }> => {
  const rows = await sql<Row>`
    SELECT ${COLUMNS} FROM events
    WHERE transaction_id < pg_snapshot_xmin(pg_current_snapshot())
      AND (transaction_id, global_position) > (${cursor.xid}::xid8, ${cursor.position}::bigint)
      AND ${isCurrentTranslation()}
    ORDER BY events.transaction_id, events.global_position
    LIMIT ${limit}`.execute(db);
  const last = rows.rows.at(-1);
  return {
    // A batch catching up holds up to its limit of rows, each parsed through its schema: in slices (the loop's other work).
    events: await mapInSlices(rows.rows, toLedgerEvent),
    next: last ? { xid: last.transaction_id, position: String(last.global_position) } : cursor,
  };
};

/** Every event of the given leg streams plus the parent-side events that name these legs as children. */
export const readLegEvents = async (
  db: Executor,
  streams: readonly string[],
  childIds: readonly string[],
  /** Positions the caller already holds (the batch being projected): not read again. */
  known: readonly string[],
  /** A condition on `events` that an event must meet to be read (a projection leaves out what it parked). */
  keep: RawBuilder<unknown>,
  /** Only events at or before this point in commit order (isolating a poison event: its successors are not yet applied). */
  upTo?: Cursor,
): Promise<LedgerEvent[]> => {
  if (streams.length === 0 && childIds.length === 0) return [];
  const before = upTo ? sql`AND (transaction_id, global_position) <= (${upTo.xid}::xid8, ${upTo.position}::bigint)` : sql``;
  // Only each receipt's newest translation counts (retranslation.repository.ts).
  const skip = sql`${keep} AND ${isCurrentTranslation()} ${before}`;
  const rows = await sql<Row>`
    WITH k AS (SELECT unnest(${known}::bigint[]) AS p)
    SELECT ${COLUMNS} FROM events WHERE stream_name = ANY (${streams}::text[]) AND global_position NOT IN (SELECT p FROM k) AND ${skip}
    UNION
    SELECT ${COLUMNS} FROM events WHERE data ? 'childLegId' AND data->>'childLegId' = ANY (${childIds}::text[])
      AND global_position NOT IN (SELECT p FROM k) AND ${skip}`.execute(db);
  return mapInSlices(rows.rows, toLedgerEvent);
};

export const headPosition = async (db: Executor): Promise<{ position: string; at: Date | null }> => {
  const r = await sql<{ position: string | null; at: Date | null }>`
    SELECT global_position::text AS position, recorded_at AS at FROM events ORDER BY global_position DESC LIMIT 1`.execute(db);
  return { position: r.rows[0]?.position ?? '0', at: r.rows[0]?.at ?? null };
};

/**
 * Tee mode: the answer events of the given legs (their `appAnswers-` streams) and the dial outcomes their own
 * streams' action hooks told (current translations only), in position order. The legs come as a relation of
 * (provider, call_id) that the caller builds over its own tables, so that a tree's legs and these events are
 * found in one statement (two index probes per leg on events (stream_name, stream_version)) while the store's
 * SQL stays here. The stream names are spelled in SQL as stream-names.ts spells them.
 */
export const answersAndDialOutcomesOf = <T>(legs: RawBuilder<unknown>): RawBuilder<T> => sql<T>`
  WITH legs AS MATERIALIZED (${legs})
  SELECT legs.provider, legs.call_id, e.global_position AS gp, e.global_position::text AS position, e.type, e.data, e.received_at
  FROM legs JOIN events e ON e.stream_name = 'appAnswers-' || legs.provider || ':' || legs.call_id
  UNION ALL
  SELECT legs.provider, legs.call_id, e.global_position, e.global_position::text, e.type, e.data, e.received_at
  FROM legs JOIN events e ON e.stream_name = 'callLeg-' || legs.provider || ':' || legs.call_id AND e.type = 'DialCompleted' AND ${isCurrentTranslation('e')}
  ORDER BY gp`;

/** The next page of leg stream names after `after`, in name order (a rebuild's bulk load walks the legs by them). */
export const legStreamNamesAfter = async (db: Executor, after: string, limit: number): Promise<string[]> => {
  const page = await sql<{ stream_name: string }>`
    SELECT stream_name FROM streams WHERE stream_name > ${after} AND stream_name LIKE 'callLeg-%'
    ORDER BY stream_name LIMIT ${limit}`.execute(db);
  return page.rows.map((r) => r.stream_name);
};

/**
 * Every current event of the streams named in [first, last] committed below `belowXid`: a name range rather than
 * a list, so one index range scan over a page of streams.
 */
export const readStreamRange = async (db: Executor, first: string, last: string, belowXid: string): Promise<LedgerEvent[]> => {
  const rows = await sql<Row>`
    SELECT ${COLUMNS} FROM events
    WHERE stream_name >= ${first} AND stream_name <= ${last} AND transaction_id < ${belowXid}::xid8 AND ${isCurrentTranslation()}`.execute(db);
  return rows.rows.map(toLedgerEvent);
};

/** The child legs that the given leg streams name (`childLegId` in their events), with each event's provider. */
export const childLegsNamedIn = async (db: Executor, streams: readonly string[], keep: RawBuilder<unknown>): Promise<{ provider: Provider; child: string }[]> => {
  const rows = await sql<{ provider: Provider; child: string }>`
    SELECT metadata->>'provider' AS provider, data->>'childLegId' AS child FROM events
    WHERE stream_name = ANY (${streams}::text[]) AND data ? 'childLegId' AND ${keep} AND ${isCurrentTranslation()}`.execute(db);
  return rows.rows;
};

/** The current events of one type in the given streams (e.g. the machine detections of parent legs). */
export const readTypeInStreams = async (db: Executor, streams: readonly string[], type: string, keep: RawBuilder<unknown>): Promise<LedgerEvent[]> => {
  const rows = await sql<Row>`
    SELECT ${COLUMNS} FROM events WHERE stream_name = ANY (${streams}::text[]) AND type = ${type} AND ${keep} AND ${isCurrentTranslation()}`.execute(db);
  return rows.rows.map(toLedgerEvent);
};

/** Identity of the event at a position (what a projection records when it parks it). */
export const eventKeyAt = async (db: Executor, position: string): Promise<{ eventId: string; streamName: string; type: string } | null> => {
  const r = await sql<{ event_id: string; stream_name: string; type: string }>`
    SELECT event_id::text, stream_name, type FROM events WHERE global_position = ${position}::bigint`.execute(db);
  const row = r.rows[0];
  return row ? { eventId: row.event_id, streamName: row.stream_name, type: row.type } : null;
};

/** How many events lie after a cursor in commit order, and when the oldest of them was recorded. */
export const eventsAfter = async (db: Executor, cursor: Cursor): Promise<{ count: string; oldest: Date | null }> => {
  const r = await sql<{ count: string; oldest: Date | null }>`
    SELECT count(*)::text AS count, min(recorded_at) AS oldest FROM events
    WHERE (transaction_id, global_position) > (${cursor.xid}::xid8, ${cursor.position}::bigint)`.execute(db);
  return r.rows[0] ?? { count: '0', oldest: null };
};

/**
 * True when some event at or below `position` lies after one of the cursors (not yet applied by its reader), or
 * when `position` is not in the store yet (beyond the head, it cannot have been applied).
 */
export const pendingAtOrBelow = async (db: Executor, position: string, cursors: readonly Cursor[]): Promise<boolean> => {
  const r = await sql<{ pending: boolean }>`
    SELECT NOT EXISTS (SELECT 1 FROM events WHERE global_position >= ${position}::bigint) OR EXISTS (
      SELECT 1 FROM unnest(${cursors.map((c) => c.xid)}::xid8[], ${cursors.map((c) => c.position)}::bigint[]) AS c(xid, pos)
      JOIN events e ON e.global_position <= ${position}::bigint AND (e.transaction_id, e.global_position) > (c.xid, c.pos)
    ) AS pending`.execute(db);
  return r.rows[0]!.pending;
};
