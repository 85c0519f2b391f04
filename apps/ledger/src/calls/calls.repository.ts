import { Inject, Injectable, Logger } from '@nestjs/common';
import { sql, type RawBuilder } from 'kysely';
import { Database } from '@lib/db';
import { READ_DATABASE } from '../common/tokens.js';
import { answersAndDialOutcomesOf, EventStoreRepository } from '@lib/event-store';
import { PROVIDERS, unavailable, type AnsweredBy, type CallLegRow, type Direction, type DurationSource, type LegStatus, type Provider, type RecordingScope, type TimeSource, type Verification } from '@lib/ledger';
import type { CursorKey } from '../common/page-cursor.js';
import type { StoredLeg } from './call-leg.mapper.js';

export interface CallFilters {
  provider?: Provider;
  accountId?: string;
  status?: LegStatus;
  direction?: Direction;
  from?: string;
  to?: string;
  /** Either number contains this text (literally). */
  numberContains?: string;
  since?: string;
  until?: string;
  rootOnly?: boolean;
  final?: boolean;
  verification?: Verification;
  attempt?: boolean;
  /** Comma-separated human, machine, fax (validated by the query schema). */
  answeredBy?: string;
}

/** The statuses the analytics count as attempts (libs/ledger/src/kpis.ts). */
export const TERMINAL_STATUSES = ['completed', 'busy', 'no-answer', 'failed', 'canceled'] as const satisfies readonly LegStatus[];

/** A double precision column in JSON: a number, or "NaN" / "Infinity" / "-Infinity" as strings. */
type JsonFloat = number | string;

/**
 * A leg row as `row_to_json` gives it (see legRows). Its values are those the pg driver's column parsers gave: the
 * timestamps parse to the same instants (checked against postgres-date on 300,000 random times), and a float's
 * text is the same shortest form.
 */
interface LegDbRow {
  provider: Provider;
  call_id: string;
  account_id: string | null;
  parent_call_id: string | null;
  root_call_id: string;
  depth: number;
  direction: Direction | null;
  from_number: string | null;
  to_number: string | null;
  status: LegStatus;
  /** Timestamps as JSON spells them (ISO 8601 with the session's offset, microseconds). */
  started_at: string | null;
  answered_at: string | null;
  ended_at: string | null;
  ring_duration_sec: JsonFloat | null;
  talk_duration_sec: JsonFloat | null;
  ring_duration_source: DurationSource | null;
  talk_duration_source: DurationSource | null;
  answered_by: AnsweredBy;
  end_reason: string | null;
  sip_status: number | null;
  conference_ids: string[];
  final: boolean;
  event_count: number;
  last_position: string;
  link_conflict: boolean;
  invalid_fields: CallLegRow['invalidFields'];
  parked_events: number;
  verification: Verification;
  answered_by_detail: string | null;
  hangup_by: string | null;
  end_reason_detail: string | null;
  started_at_source: TimeSource | null;
  answered_at_source: TimeSource | null;
  ended_at_source: TimeSource | null;
  pdd_sec: JsonFloat | null;
  /** started_at at full (microsecond) precision, for the keyset cursor. */
  started_key: string | null;
  recordings: RecordingJson[];
}

/** A recording as json_build_object spells it (times as PostgreSQL's JSON text). */
interface RecordingJson {
  recording_id: string;
  url: string;
  duration_sec: number | null;
  scope: RecordingScope;
  created_at: string;
}

/** A leg row with its recordings folded in, so that every read of legs is one round trip. */
const LEG_COLUMNS = sql.raw(`l.provider, l.call_id, l.account_id, l.parent_call_id, l.root_call_id, l.depth, l.direction, l.from_number,
  l.to_number, l.status, l.started_at, l.answered_at, l.ended_at, l.ring_duration_sec, l.talk_duration_sec, l.ring_duration_source,
  l.talk_duration_source, l.answered_by, l.end_reason, l.sip_status, l.conference_ids, l.final, l.event_count,
  l.last_position::text AS last_position, l.link_conflict, l.invalid_fields, l.started_at::text AS started_key,
  (SELECT count(*)::int FROM projection_parked pk JOIN projection_checkpoints c ON c.name = pk.projection AND c.generation = pk.generation
    WHERE pk.projection = 'call_legs' AND pk.stream_name = 'callLeg-' || l.provider || ':' || l.call_id) AS parked_events, -- legStreamName, in SQL
  l.verification,
  l.answered_by_detail, l.hangup_by, l.end_reason_detail, l.started_at_source, l.answered_at_source, l.ended_at_source, l.pdd_sec,
  (SELECT coalesce(json_agg(json_build_object('recording_id', r.recording_id, 'url', r.url, 'duration_sec', r.duration_sec, 'scope', r.scope,
      'created_at', r.created_at) ORDER BY r.created_at, r.recording_id), '[]')
    FROM recordings r WHERE r.provider = l.provider AND r.call_id = l.call_id) AS recordings`);

const iso = (t: string | null): string | null => (t === null ? null : new Date(t).toISOString());
/** As the driver's float8 parser (parseFloat) read the column's text: "NaN" is NaN, which the JSON answer shows as null. */
const num = (v: JsonFloat | null): number | null => (typeof v === 'string' ? Number(v) : v);

/**
 * The rows of `statement` (LEG_COLUMNS, plus any extra column) each as one JSON value, in `order` (on `t.`). The
 * driver then parses one value per row with JSON.parse instead of running a parser per column (38 of them, four
 * timestamps through Date): at 50 legs a page that was about 300 kB of garbage and 0.8 ms of the service's CPU
 * against 160 kB and 0.4 ms (in-process, loaded machine), and the garbage is what sets how often a
 * young-generation collection lands in a request.
 */
const legRows = <R = LegDbRow>(statement: RawBuilder<unknown>, order?: RawBuilder<unknown>) =>
  sql<{ j: R }>`SELECT row_to_json(t) AS j FROM (${statement}) t${order ? sql` ORDER BY ${order}` : sql``}`;
const and = (parts: RawBuilder<unknown>[]) => (parts.length ? sql.join(parts, sql` AND `) : sql`true`);

/** LIKE's own wildcards (and its escape) in a searched value are literal. */
const likeLiteral = (text: string) => text.replace(/[\\%_]/g, (c) => `\\${c}`);

/**
 * Characters of a long substring or suffix that the trigram index is asked about. The index intersects the
 * posting lists of every trigram of the pattern, and a trigram that nearly every number holds (those of a
 * shared country or area code: `555` in `+1312555…`) costs a walk over a list of most legs: a 7-digit substring
 * took 15 ms per column at a million legs, against 0.3 ms for its last 4 digits. Numbers differ most at their
 * end (subscriber digits), so the index is asked for the last 4 characters and each candidate is then checked
 * against the whole pattern, through an expression the index cannot serve (so the planner does not fold the
 * whole pattern back into the index scan) and that has statistics of its own (call-legs.query-indexes.ts), so
 * that a substring most legs hold is still answered by walking the time index.
 */
const INDEX_HINT_CHARS = 4;

const anywhere = (ref: RawBuilder<unknown>, text: string, end: boolean): RawBuilder<unknown> => {
  const pattern = (t: string) => `%${likeLiteral(t)}${end ? '' : '%'}`;
  // Characters (code points), not UTF-16 units: a cut inside a surrogate pair sent half a character, which the
  // driver turns into U+FFFD, and the hint then matched no leg at all.
  const chars = [...text];
  if (chars.length <= INDEX_HINT_CHARS) return sql`${ref} LIKE ${pattern(text)}`;
  return sql`(${ref} LIKE ${pattern(chars.slice(-INDEX_HINT_CHARS).join(''))} AND (${ref} || '') LIKE ${pattern(text)})`;
};

/** A needle's length in characters as PostgreSQL counts them (code points), from which it has 5-grams. */
const GRAM_CHARS = 5;

/**
 * A substring of either number of 5 characters or more asks the legs' 5-grams (libs/projections
 * call-legs.query-indexes.ts) for its last three, folded to a constant when the statement is planned (the driver's
 * statements are planned with their values), and checks each candidate with the LIKE: the grams say neither which
 * number held them, nor in what order, and two grams may share a hash. The LIKE is wrapped as `(…)::int <> 0` so
 * that the planner does not estimate it: it would multiply its own estimate of the LIKE (from the columns'
 * histograms) with the grams' (the frequencies ANALYZE measured), though one implies the other, take a needle most
 * legs hold for a rare one and sort all its matches for the first page instead of walking the time index. An
 * expression without statistics compared with `<>` is estimated to hold for 99.5 % of rows, so the grams'
 * estimate is the filter's.
 */
const eitherNumberContains = (text: string, grams: boolean): RawBuilder<unknown> => {
  if (!grams || [...text].length < GRAM_CHARS) return sql`(${anywhere(sql.ref('l.from_number'), text, false)} OR ${anywhere(sql.ref('l.to_number'), text, false)})`;
  const pattern = `%${likeLiteral(text)}%`;
  return sql`(l.number_grams @> call_leg_needle_grams5(${text}) AND (l.from_number LIKE ${pattern} OR l.to_number LIKE ${pattern})::int <> 0)`;
};

/**
 * `+1312*` is a prefix, `*0100` a suffix, `*5550*` a substring (the last two through the generation's trigram
 * index on from/to); anything else is the exact number.
 */
const numberMatch = (column: string, pattern: string): RawBuilder<unknown> => {
  const leading = pattern.startsWith('*');
  const trailing = pattern.length > 1 && pattern.endsWith('*');
  if (!leading && !trailing) return sql`${sql.ref(column)} = ${pattern}`;
  const core = pattern.slice(leading ? 1 : 0, trailing ? -1 : undefined);
  if (!leading) return sql`${sql.ref(column)} LIKE ${likeLiteral(core) + '%'}`;
  return anywhere(sql.ref(column), core, !trailing);
};

const gramsLogger = new Logger('CallsRepository');
const GRAMS_WARN_EVERY_MS = 10 * 60_000;
let gramsWarnedAt = Number.NEGATIVE_INFINITY;
/** After a search found no grams, the next ones go straight to the trigram form for this long, then try again. */
const GRAMS_RECHECK_MS = 10_000;
let gramsMissingUntil = Number.NEGATIVE_INFINITY;

/**
 * Runs `run` with the legs' 5-grams, and again without them (the trigram form) when the published generation has no
 * `number_grams` column: one built by projection version 7 or older stays published while version 8 is being
 * rebuilt beside it (blue-green), which at a million legs is about a minute and at a hundred million, hours. The
 * first try fails at planning, before any row is read.
 */
export const withNumberGrams = async <T>(run: (grams: boolean) => Promise<T>): Promise<T> => {
  // Both forms select the same legs, so a search that takes the trigram form for a few seconds after the grams were
  // published only runs slower, while a rebuild's hours of searches each pay one failed statement only every 10 s.
  if (Date.now() < gramsMissingUntil) return run(false);
  try {
    return await run(true);
  } catch (err) {
    const e = err as { code?: string; message?: string };
    if (e.code !== '42703' || !e.message?.includes('number_grams')) throw err;
    gramsMissingUntil = Date.now() + GRAMS_RECHECK_MS;
    // Said now and then, not at every search: normal during a rebuild to version 8, but a generation that was made
    // before migration 20261206000300 ran keeps no grams until the next rebuild, and only this says so.
    if (Date.now() - gramsWarnedAt > GRAMS_WARN_EVERY_MS) {
      gramsWarnedAt = Date.now();
      gramsLogger.warn('the published call legs have no number_grams (a generation of projection version 7 or older, or made before migration 20261206000300_number_grams5): number searches of 5+ characters use the trigram index until a generation of version 8 is published');
    }
    return run(false);
  }
};

/** `grams`: whether the published legs have `number_grams` (withNumberGrams). */
export const callFilterSql = (f: CallFilters, grams = true): RawBuilder<unknown>[] => {
  const w: RawBuilder<unknown>[] = [];
  if (f.provider) w.push(sql`l.provider = ${f.provider}`);
  if (f.accountId) w.push(sql`l.account_id = ${f.accountId}`);
  if (f.status) w.push(sql`l.status = ${f.status}`);
  if (f.direction) w.push(sql`l.direction = ${f.direction}`);
  if (f.from) w.push(numberMatch('l.from_number', f.from));
  if (f.to) w.push(numberMatch('l.to_number', f.to));
  if (f.numberContains) w.push(eitherNumberContains(f.numberContains, grams));
  if (f.since) w.push(sql`l.started_at >= ${f.since}::timestamptz`);
  if (f.until) w.push(sql`l.started_at < ${f.until}::timestamptz`);
  if (f.rootOnly) w.push(sql`l.parent_call_id IS NULL`);
  if (f.final !== undefined) w.push(sql`l.final = ${f.final}`);
  if (f.verification) w.push(sql`l.verification = ${f.verification}`);
  if (f.attempt === true) w.push(sql`l.status = ANY (${[...TERMINAL_STATUSES]}::text[])`);
  if (f.attempt === false) w.push(sql`l.status <> ALL (${[...TERMINAL_STATUSES]}::text[])`);
  if (f.answeredBy) w.push(sql`l.answered_by = ANY (${f.answeredBy.split(',')}::text[])`);
  return w;
};

/** `provider = ANY(all providers)` lets the primary key (provider, call_id) answer with one probe per provider. */
const providersOf = (provider?: Provider): string[] => (provider ? [provider] : [...PROVIDERS]);

/**
 * The read-model views appear when the projector first starts; until then a query is "not yet", not a bug.
 */
export const readModelQuery = async <T>(run: Promise<T>): Promise<T> => {
  try {
    return await run;
  } catch (err) {
    if ((err as { code?: string }).code === '42P01') throw unavailable('the read models are being created (projector starting); retry shortly');
    throw err;
  }
};

/** Reads of the call-leg read model (the `call_legs` and `recordings` views) and of the legs' stored events. */
@Injectable()
export class CallsRepository {
  private readonly store: EventStoreRepository;

  constructor(@Inject(READ_DATABASE) private readonly db: Database) {
    this.store = new EventStoreRepository(db);
  }

  /**
   * One page, newest first: started_at DESC (legs without a start time last), then provider, call_id. The key is
   * [started_at at full precision or null, provider, call_id] of the last row of the previous page. Reads
   * `limit + 1` rows so that the caller knows whether there is a next page. With `treeSizes`, each row also
   * carries the number of legs in its tree (`treeLegs`, same order as `legs`), counted in the same statement.
   */
  listLegs(
    filters: CallFilters,
    after: CursorKey | null,
    limit: number,
    options: { treeSizes?: boolean } = {},
  ): Promise<{ legs: StoredLeg[]; keys: CursorKey[]; treeLegs: number[] }> {
    return withNumberGrams((grams) => this.listLegsWith(callFilterSql(filters, grams), filters, after, limit, options));
  }

  private async listLegsWith(
    where: RawBuilder<unknown>[],
    filters: CallFilters,
    after: CursorKey | null,
    limit: number,
    { treeSizes = false }: { treeSizes?: boolean },
  ): Promise<{ legs: StoredLeg[]; keys: CursorKey[]; treeLegs: number[] }> {
    const rows: (LegDbRow & { tree_legs?: number })[] = [];
    const [afterStart, afterProvider, afterCall] = after ?? [];
    const page = (where: RawBuilder<unknown>, order: RawBuilder<unknown>, n: number, dated: boolean) => {
      const legs = sql`SELECT ${LEG_COLUMNS} FROM call_legs l WHERE ${where} ORDER BY ${order} LIMIT ${n}`;
      const again = sql.raw(dated ? 't.started_at DESC NULLS LAST, t.provider, t.call_id' : 't.provider, t.call_id');
      if (!treeSizes) return readModelQuery(legRows(legs, again).execute(this.db));
      // One round trip instead of a second one for the sizes: on a busy machine every extra wake-up of the
      // client and the server is a chance to wait for a core, which is what the slowest requests are made of.
      // Each tree is counted once (index-only on (provider, root_call_id)), however many of its legs the page holds:
      // `sizes` is MATERIALIZED because, inlined, its count ran once per row of the join (51 counts for 22 trees).
      return readModelQuery(
        legRows<LegDbRow & { tree_legs: number }>(
          sql`
        WITH page AS MATERIALIZED (${legs}),
          sizes AS MATERIALIZED (
            SELECT r.provider, r.root_call_id,
              (SELECT count(*)::int FROM call_legs t WHERE t.provider = r.provider AND t.root_call_id = r.root_call_id) AS tree_legs
            FROM (SELECT DISTINCT provider, root_call_id FROM page) r)
        SELECT page.*, sizes.tree_legs FROM page JOIN sizes ON sizes.provider = page.provider AND sizes.root_call_id = page.root_call_id`,
          again,
        ).execute(this.db),
      );
    };
    if (!after || afterStart !== null) {
      // `started_at <= s` gives the index scan its start; the OR only sorts out the few rows that tie on s.
      const keyset = after
        ? [sql`l.started_at <= ${afterStart}::timestamptz AND (l.started_at < ${afterStart}::timestamptz OR (l.provider, l.call_id) > (${afterProvider}, ${afterCall}))`]
        : [];
      const dated = await page(sql`l.started_at IS NOT NULL AND ${and([...where, ...keyset])}`, sql`l.started_at DESC NULLS LAST, l.provider, l.call_id`, limit + 1, true);
      for (const r of dated.rows) rows.push(r.j);
    }
    if (rows.length <= limit && !filters.since && !filters.until) {
      const keyset = after && afterStart === null ? [sql`(l.provider, l.call_id) > (${afterProvider}, ${afterCall})`] : [];
      const undated = await page(sql`l.started_at IS NULL AND ${and([...where, ...keyset])}`, sql`l.provider, l.call_id`, limit + 1 - rows.length, false);
      for (const r of undated.rows) rows.push(r.j);
    }
    return {
      legs: rows.map(toStoredLeg),
      keys: rows.map((r) => [r.started_key, r.provider, r.call_id]),
      treeLegs: treeSizes ? rows.map((r) => r.tree_legs!) : [],
    };
  }

  /** How many legs the filters select (the `total` of a calls page; drill-throughs compare it with analytics). */
  async countLegs(filters: CallFilters): Promise<number> {
    const res = await withNumberGrams((grams) =>
      readModelQuery(sql<{ n: string }>`SELECT count(*)::text AS n FROM call_legs l WHERE ${and(callFilterSql(filters, grams))}`.execute(this.db)),
    );
    return Number(res.rows[0]!.n);
  }

  /** The leg with this call id, for one provider or for each provider that uses the id. */
  async findLegs(callId: string, provider?: Provider): Promise<StoredLeg[]> {
    const rows = await readModelQuery(
      legRows(sql`SELECT ${LEG_COLUMNS} FROM call_legs l WHERE l.provider = ANY (${providersOf(provider)}::text[]) AND l.call_id = ${callId}`, sql`t.provider`).execute(this.db),
    );
    return rows.rows.map((r) => toStoredLeg(r.j));
  }

  /**
   * Every leg of every tree that holds a leg with this call id (one tree per provider that uses the id), in one
   * round trip; `isTarget` marks the legs that carry the id.
   */
  async treesOf(callId: string, provider?: Provider): Promise<{ leg: StoredLeg; isTarget: boolean }[]> {
    const rows = await readModelQuery(
      legRows(sql`
        SELECT ${LEG_COLUMNS} FROM call_legs l
        JOIN (SELECT provider, root_call_id FROM call_legs WHERE provider = ANY (${providersOf(provider)}::text[]) AND call_id = ${callId}) m
          ON l.provider = m.provider AND l.root_call_id = m.root_call_id`).execute(this.db),
    );
    return rows.rows.map(({ j }) => ({ leg: toStoredLeg(j), isTarget: j.call_id === callId }));
  }

  /** Every leg of one tree (same provider, same root). */
  async treeLegs(provider: Provider, rootCallId: string): Promise<StoredLeg[]> {
    const rows = await readModelQuery(legRows(sql`SELECT ${LEG_COLUMNS} FROM call_legs l WHERE l.provider = ${provider} AND l.root_call_id = ${rootCallId}`).execute(this.db));
    return rows.rows.map((r) => toStoredLeg(r.j));
  }

  /**
   * Tee mode: the answer events of every leg of every tree that holds a leg with this call id (one tree per
   * provider that uses the id, like treesOf), and the dial outcomes their action hooks told. It finds the trees
   * itself so that it can run beside treesOf instead of after it.
   */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- jsonb of several event types; get-call-tree.query.ts reads each by its type
  async treeIntentEvents(callId: string, provider?: Provider): Promise<{ provider: Provider; callId: string; position: string; type: string; data: any; receivedAt: Date }[]> {
    const rows = await readModelQuery(
      // eslint-disable-next-line @typescript-eslint/no-explicit-any -- as above
      answersAndDialOutcomesOf<{ provider: Provider; call_id: string; position: string; type: string; data: any; received_at: Date }>(sql`
        SELECT l.provider, l.call_id FROM call_legs l
        JOIN (SELECT provider, root_call_id FROM call_legs WHERE provider = ANY (${providersOf(provider)}::text[]) AND call_id = ${callId}) m
          ON l.provider = m.provider AND l.root_call_id = m.root_call_id`).execute(this.db),
    );
    return rows.rows.map((r) => ({ provider: r.provider, callId: r.call_id, position: r.position, type: r.type, data: r.data, receivedAt: r.received_at }));
  }

  /** The given streams' events with their receipts, in position order (and what the chain check needs). */
  streamEvents(streamNames: string[]) {
    return this.store.readChainLinksWithReceipts(streamNames);
  }
}

/**
 * One object literal with every property, not the domain row spread into a second object with the tree fields: a
 * spread that adds properties to a ~40-property object built a slow (dictionary-mode) copy, which cost a 50-row page
 * about 1 ms of CPU and 340 kB of garbage (queries.probe; the service's young-generation collections then landed in
 * the slowest requests).
 */
const toStoredLeg = (r: LegDbRow): StoredLeg => {
  const leg: StoredLeg = {
    provider: r.provider,
    accountId: r.account_id,
    callId: r.call_id,
    parentCallId: r.parent_call_id,
    direction: r.direction,
    from: r.from_number,
    to: r.to_number,
    status: r.status,
    startedAt: iso(r.started_at),
    answeredAt: iso(r.answered_at),
    endedAt: iso(r.ended_at),
    ringDurationSec: num(r.ring_duration_sec),
    talkDurationSec: num(r.talk_duration_sec),
    ringDurationSource: r.ring_duration_source,
    talkDurationSource: r.talk_duration_source,
    answeredBy: r.answered_by,
    endReason: r.end_reason,
    sipStatus: r.sip_status,
    conferenceIds: r.conference_ids,
    recordings: r.recordings.map((x) => ({ recordingId: x.recording_id, url: x.url, durationSec: x.duration_sec, scope: x.scope, callId: r.call_id, createdAt: new Date(x.created_at).toISOString() })),
    final: r.final,
    eventCount: r.event_count,
    lastPosition: r.last_position,
    linkConflict: r.link_conflict,
    invalidFields: r.invalid_fields,
    verification: r.verification,
    answeredByDetail: r.answered_by_detail,
    hangupBy: r.hangup_by,
    endReasonDetail: r.end_reason_detail,
    startedAtSource: r.started_at_source,
    answeredAtSource: r.answered_at_source,
    endedAtSource: r.ended_at_source,
    pddSec: num(r.pdd_sec),
    rootCallId: r.root_call_id,
    depth: r.depth,
    parkedEvents: r.parked_events,
  };
  return leg;
};
