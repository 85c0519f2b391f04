import { Injectable } from '@nestjs/common';
import { sql, type RawBuilder } from 'kysely';
import { Database } from '@lib/db';
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
  since?: string;
  until?: string;
  rootOnly?: boolean;
  final?: boolean;
  verification?: Verification;
  attempt?: boolean;
  /** Comma-separated human, machine, fax (validated by the query schema). */
  answeredBy?: string;
  numberContains?: string;
}

/** The statuses the analytics count as attempts (libs/ledger/src/kpis.ts). */
export const TERMINAL_STATUSES = ['completed', 'busy', 'no-answer', 'failed', 'canceled'] as const satisfies readonly LegStatus[];

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
  started_at: Date | null;
  answered_at: Date | null;
  ended_at: Date | null;
  ring_duration_sec: number | null;
  talk_duration_sec: number | null;
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
  pdd_sec: number | null;
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

export interface StoredEventRow {
  position: string;
  event_id: string;
  stream_name: string;
  stream_version: number;
  type: string;
  schema_version: number;
  data: unknown;
  metadata: Record<string, unknown>;
  received_at: Date;
  occurred_at: Date | null;
  prev_hash: Buffer | null;
  hash: Buffer;
  receipt_id: string;
  path: string;
  content_type: string | null;
  body: Buffer;
  body_sha256: string;
  actual_body_sha256: string;
  signature_status: 'verified' | 'unverified' | 'not-checked';
  signature_timestamp: Date | null;
  headers: Record<string, string>;
  chain_version: number;
  provider: string;
  query: string;
  remote_addr: string | null;
  source: string;
}

/** A leg row with its recordings folded in, so that every read of legs is one round trip. */
const LEG_COLUMNS = sql.raw(`l.provider, l.call_id, l.account_id, l.parent_call_id, l.root_call_id, l.depth, l.direction, l.from_number,
  l.to_number, l.status, l.started_at, l.answered_at, l.ended_at, l.ring_duration_sec, l.talk_duration_sec, l.ring_duration_source,
  l.talk_duration_source, l.answered_by, l.end_reason, l.sip_status, l.conference_ids, l.final, l.event_count,
  l.last_position::text AS last_position, l.link_conflict, l.invalid_fields, l.started_at::text AS started_key,
  (SELECT count(*)::int FROM projection_parked pk JOIN projection_checkpoints c ON c.name = pk.projection AND c.generation = pk.generation
    WHERE pk.projection = 'call_legs' AND pk.stream_name = 'callLeg-' || l.provider || ':' || l.call_id) AS parked_events,
  l.verification,
  l.answered_by_detail, l.hangup_by, l.end_reason_detail, l.started_at_source, l.answered_at_source, l.ended_at_source, l.pdd_sec,
  (SELECT coalesce(json_agg(json_build_object('recording_id', r.recording_id, 'url', r.url, 'duration_sec', r.duration_sec, 'scope', r.scope,
      'created_at', r.created_at) ORDER BY r.created_at, r.recording_id), '[]')
    FROM recordings r WHERE r.provider = l.provider AND r.call_id = l.call_id) AS recordings`);

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);
const and = (parts: RawBuilder<unknown>[]) => (parts.length ? sql.join(parts, sql` AND `) : sql`true`);

const likeLiteral = (v: string) => v.replace(/[\\%_]/g, (c) => `\\${c}`);

/** `+1312*` is a prefix; LIKE's own wildcards in the value are literal. */
const numberMatch = (column: string, pattern: string): RawBuilder<unknown> =>
  pattern.endsWith('*')
    ? sql`${sql.ref(column)} LIKE ${likeLiteral(pattern.slice(0, -1)) + '%'}`
    : sql`${sql.ref(column)} = ${pattern}`;

export const callFilterSql = (f: CallFilters): RawBuilder<unknown>[] => {
  const w: RawBuilder<unknown>[] = [];
  if (f.provider) w.push(sql`l.provider = ${f.provider}`);
  if (f.accountId) w.push(sql`l.account_id = ${f.accountId}`);
  if (f.status) w.push(sql`l.status = ${f.status}`);
  if (f.direction) w.push(sql`l.direction = ${f.direction}`);
  if (f.from) w.push(numberMatch('l.from_number', f.from));
  if (f.to) w.push(numberMatch('l.to_number', f.to));
  if (f.since) w.push(sql`l.started_at >= ${f.since}::timestamptz`);
  if (f.until) w.push(sql`l.started_at < ${f.until}::timestamptz`);
  if (f.rootOnly) w.push(sql`l.parent_call_id IS NULL`);
  if (f.final !== undefined) w.push(sql`l.final = ${f.final}`);
  if (f.verification) w.push(sql`l.verification = ${f.verification}`);
  if (f.attempt === true) w.push(sql`l.status = ANY (${[...TERMINAL_STATUSES]}::text[])`);
  if (f.attempt === false) w.push(sql`l.status <> ALL (${[...TERMINAL_STATUSES]}::text[])`);
  if (f.answeredBy) w.push(sql`l.answered_by = ANY (${f.answeredBy.split(',')}::text[])`);
  if (f.numberContains) {
    const p = `%${likeLiteral(f.numberContains)}%`;
    w.push(sql`(l.from_number ILIKE ${p} OR l.to_number ILIKE ${p})`);
  }
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

export const streamOf = (provider: Provider, callId: string) => `callLeg-${provider}:${callId}`;

/** Reads of the call-leg read model (the `call_legs` and `recordings` views) and of the legs' stored events. */
@Injectable()
export class CallsRepository {
  constructor(private readonly db: Database) {}

  /**
   * One page, newest first: started_at DESC (legs without a start time last), then provider, call_id. The key is
   * [started_at at full precision or null, provider, call_id] of the last row of the previous page. Reads
   * `limit + 1` rows so that the caller knows whether there is a next page.
   */
  async listLegs(filters: CallFilters, after: CursorKey | null, limit: number): Promise<{ legs: StoredLeg[]; keys: CursorKey[] }> {
    const where = callFilterSql(filters);
    const rows: LegDbRow[] = [];
    const [afterStart, afterProvider, afterCall] = after ?? [];
    if (!after || afterStart !== null) {
      // `started_at <= s` gives the index scan its start; the OR only sorts out the few rows that tie on s.
      const keyset = after
        ? [sql`l.started_at <= ${afterStart}::timestamptz AND (l.started_at < ${afterStart}::timestamptz OR (l.provider, l.call_id) > (${afterProvider}, ${afterCall}))`]
        : [];
      const dated = await readModelQuery(sql<LegDbRow>`
        SELECT ${LEG_COLUMNS} FROM call_legs l
        WHERE l.started_at IS NOT NULL AND ${and([...where, ...keyset])}
        ORDER BY l.started_at DESC NULLS LAST, l.provider, l.call_id
        LIMIT ${limit + 1}`.execute(this.db));
      rows.push(...dated.rows);
    }
    if (rows.length <= limit && !filters.since && !filters.until) {
      const keyset = after && afterStart === null ? [sql`(l.provider, l.call_id) > (${afterProvider}, ${afterCall})`] : [];
      const undated = await readModelQuery(sql<LegDbRow>`
        SELECT ${LEG_COLUMNS} FROM call_legs l
        WHERE l.started_at IS NULL AND ${and([...where, ...keyset])}
        ORDER BY l.provider, l.call_id
        LIMIT ${limit + 1 - rows.length}`.execute(this.db));
      rows.push(...undated.rows);
    }
    return { legs: rows.map(toStoredLeg), keys: rows.map((r) => [r.started_key, r.provider, r.call_id]) };
  }

  /** The number of legs in each of these trees, keyed `provider:rootCallId` (one index probe per tree). */
  async treeSizes(trees: { provider: Provider; rootCallId: string }[]): Promise<Map<string, number>> {
    if (trees.length === 0) return new Map();
    const res = await readModelQuery(sql<{ provider: string; root_call_id: string; n: number }>`
      SELECT t.provider, t.root_call_id, (SELECT count(*)::int FROM call_legs l WHERE l.provider = t.provider AND l.root_call_id = t.root_call_id) AS n
      FROM unnest(${trees.map((t) => t.provider)}::text[], ${trees.map((t) => t.rootCallId)}::text[]) AS t(provider, root_call_id)`.execute(this.db));
    return new Map(res.rows.map((r) => [`${r.provider}:${r.root_call_id}`, r.n]));
  }

  /** How many legs the filters select (the `total` of a calls page; drill-throughs compare it with analytics). */
  async countLegs(filters: CallFilters): Promise<number> {
    const res = await readModelQuery(sql<{ n: string }>`SELECT count(*)::text AS n FROM call_legs l WHERE ${and(callFilterSql(filters))}`.execute(this.db));
    return Number(res.rows[0]!.n);
  }

  /** The leg with this call id, for one provider or for each provider that uses the id. */
  async findLegs(callId: string, provider?: Provider): Promise<StoredLeg[]> {
    const rows = await readModelQuery(sql<LegDbRow>`
      SELECT ${LEG_COLUMNS} FROM call_legs l
      WHERE l.provider = ANY (${providersOf(provider)}::text[]) AND l.call_id = ${callId}
      ORDER BY l.provider`.execute(this.db));
    return rows.rows.map(toStoredLeg);
  }

  /**
   * Every leg of every tree that holds a leg with this call id (one tree per provider that uses the id), in one
   * round trip; `isTarget` marks the legs that carry the id.
   */
  async treesOf(callId: string, provider?: Provider): Promise<{ leg: StoredLeg; isTarget: boolean }[]> {
    const rows = await readModelQuery(sql<LegDbRow>`
      SELECT ${LEG_COLUMNS} FROM call_legs l
      JOIN (SELECT provider, root_call_id FROM call_legs WHERE provider = ANY (${providersOf(provider)}::text[]) AND call_id = ${callId}) m
        ON l.provider = m.provider AND l.root_call_id = m.root_call_id`.execute(this.db));
    return rows.rows.map((r) => ({ leg: toStoredLeg(r), isTarget: r.call_id === callId }));
  }

  /** Every leg of one tree (same provider, same root). */
  async treeLegs(provider: Provider, rootCallId: string): Promise<StoredLeg[]> {
    const rows = await readModelQuery(sql<LegDbRow>`
      SELECT ${LEG_COLUMNS} FROM call_legs l WHERE l.provider = ${provider} AND l.root_call_id = ${rootCallId}`.execute(this.db));
    return rows.rows.map(toStoredLeg);
  }

  /** Tee mode: the answer events of these legs' answers streams, and the dial outcomes their action hooks told. */
  // eslint-disable-next-line @typescript-eslint/no-explicit-any -- jsonb of several event types; get-call-tree.query.ts reads each by its type
  async intentEvents(provider: Provider, callIds: string[]): Promise<{ callId: string; position: string; type: string; data: any; receivedAt: Date }[]> {
    if (callIds.length === 0) return [];
    // eslint-disable-next-line @typescript-eslint/no-explicit-any -- as above
    const rows = await sql<{ stream_name: string; position: string; type: string; data: any; received_at: Date }>`
      SELECT stream_name, global_position::text AS position, type, data, received_at FROM events
      WHERE stream_name = ANY (${callIds.map((c) => `appAnswers-${provider}:${c}`)}::text[])
        OR (stream_name = ANY (${callIds.map((c) => streamOf(provider, c))}::text[]) AND type = 'DialCompleted')
      ORDER BY global_position`.execute(this.db);
    return rows.rows.map((r) => ({ callId: r.stream_name.slice(r.stream_name.indexOf(':') + 1), position: r.position, type: r.type, data: r.data, receivedAt: r.received_at }));
  }

  /** The given streams' events with their receipts, in position order (and what the chain check needs). */
  async streamEvents(streamNames: string[]): Promise<StoredEventRow[]> {
    const rows = await sql<StoredEventRow>`
      SELECT e.global_position::text AS position, e.event_id, e.stream_name, e.stream_version, e.type, e.schema_version, e.data,
        e.metadata, e.received_at, e.occurred_at, e.prev_hash, e.hash, r.id::text AS receipt_id, r.path, r.content_type, r.body,
        encode(r.body_sha256, 'hex') AS body_sha256, encode(sha256(r.body), 'hex') AS actual_body_sha256, r.signature_status,
        r.signature_timestamp, r.headers, e.chain_version, r.provider, r.query, r.remote_addr, r.source
      FROM events e JOIN webhook_receipts r ON r.id = e.receipt_id
      WHERE e.stream_name = ANY (${streamNames}::text[])
      ORDER BY e.global_position`.execute(this.db);
    return rows.rows;
  }
}

const toStoredLeg = (r: LegDbRow): StoredLeg => {
  const row: CallLegRow = {
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
    ringDurationSec: r.ring_duration_sec,
    talkDurationSec: r.talk_duration_sec,
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
    pddSec: r.pdd_sec,
  };
  return { ...row, rootCallId: r.root_call_id, depth: r.depth, parkedEvents: r.parked_events };
};
