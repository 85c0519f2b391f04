import { Injectable } from '@nestjs/common';
import { sql, type RawBuilder } from 'kysely';
import { Database } from '@lib/db';
import { PROVIDERS, type AnsweredBy, type CallLegRow, type Direction, type DurationSource, type LegStatus, type Provider, type RecordingScope } from '@lib/ledger';
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
}

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
  /** started_at at full (microsecond) precision, for the keyset cursor. */
  started_key: string | null;
}

interface RecordingDbRow {
  provider: Provider;
  recording_id: string;
  call_id: string;
  root_call_id: string;
  url: string;
  duration_sec: number | null;
  scope: RecordingScope;
  created_at: Date;
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
}

const LEG_COLUMNS = sql.raw(`provider, call_id, account_id, parent_call_id, root_call_id, depth, direction, from_number, to_number, status,
  started_at, answered_at, ended_at, ring_duration_sec, talk_duration_sec, ring_duration_source, talk_duration_source, answered_by,
  end_reason, sip_status, conference_ids, final, event_count, last_position::text AS last_position, link_conflict, started_at::text AS started_key`);

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);
const and = (parts: RawBuilder<unknown>[]) => (parts.length ? sql.join(parts, sql` AND `) : sql`true`);

/** `+1312*` is a prefix; LIKE's own wildcards in the value are literal. */
const numberMatch = (column: string, pattern: string): RawBuilder<unknown> =>
  pattern.endsWith('*')
    ? sql`${sql.ref(column)} LIKE ${pattern.slice(0, -1).replace(/[\\%_]/g, (c) => `\\${c}`) + '%'}`
    : sql`${sql.ref(column)} = ${pattern}`;

const filterSql = (f: CallFilters): RawBuilder<unknown>[] => {
  const w: RawBuilder<unknown>[] = [];
  if (f.provider) w.push(sql`provider = ${f.provider}`);
  if (f.accountId) w.push(sql`account_id = ${f.accountId}`);
  if (f.status) w.push(sql`status = ${f.status}`);
  if (f.direction) w.push(sql`direction = ${f.direction}`);
  if (f.from) w.push(numberMatch('from_number', f.from));
  if (f.to) w.push(numberMatch('to_number', f.to));
  if (f.since) w.push(sql`started_at >= ${f.since}::timestamptz`);
  if (f.until) w.push(sql`started_at < ${f.until}::timestamptz`);
  if (f.rootOnly) w.push(sql`parent_call_id IS NULL`);
  if (f.final !== undefined) w.push(sql`final = ${f.final}`);
  return w;
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
    const where = filterSql(filters);
    const rows: LegDbRow[] = [];
    const [afterStart, afterProvider, afterCall] = after ?? [];
    if (!after || afterStart !== null) {
      // `started_at <= s` gives the index scan its start; the OR only sorts out the few rows that tie on s.
      const keyset = after
        ? [sql`started_at <= ${afterStart}::timestamptz AND (started_at < ${afterStart}::timestamptz OR (provider, call_id) > (${afterProvider}, ${afterCall}))`]
        : [];
      const dated = await sql<LegDbRow>`
        SELECT ${LEG_COLUMNS} FROM call_legs
        WHERE started_at IS NOT NULL AND ${and([...where, ...keyset])}
        ORDER BY started_at DESC NULLS LAST, provider, call_id
        LIMIT ${limit + 1}`.execute(this.db);
      rows.push(...dated.rows);
    }
    if (rows.length <= limit && !filters.since && !filters.until) {
      const keyset = after && afterStart === null ? [sql`(provider, call_id) > (${afterProvider}, ${afterCall})`] : [];
      const undated = await sql<LegDbRow>`
        SELECT ${LEG_COLUMNS} FROM call_legs
        WHERE started_at IS NULL AND ${and([...where, ...keyset])}
        ORDER BY provider, call_id
        LIMIT ${limit + 1 - rows.length}`.execute(this.db);
      rows.push(...undated.rows);
    }
    const legs = await this.withRecordings(rows);
    return { legs, keys: rows.map((r) => [r.started_key, r.provider, r.call_id]) };
  }

  /** The leg with this call id, for one provider or for each provider that uses the id. */
  async findLegs(callId: string, provider?: Provider): Promise<StoredLeg[]> {
    // `provider = ANY(all providers)` lets the primary key (provider, call_id) answer with one probe per provider.
    const rows = await sql<LegDbRow>`
      SELECT ${LEG_COLUMNS} FROM call_legs
      WHERE provider = ANY (${provider ? [provider] : [...PROVIDERS]}::text[]) AND call_id = ${callId}
      ORDER BY provider`.execute(this.db);
    return this.withRecordings(rows.rows);
  }

  /** Every leg of one tree (same provider, same root). */
  async treeLegs(provider: Provider, rootCallId: string): Promise<StoredLeg[]> {
    const rows = await sql<LegDbRow>`
      SELECT ${LEG_COLUMNS} FROM call_legs WHERE provider = ${provider} AND root_call_id = ${rootCallId}`.execute(this.db);
    return this.withRecordings(rows.rows);
  }

  /** The given streams' events with their receipts, in position order (and what the chain check needs). */
  async streamEvents(streamNames: string[]): Promise<StoredEventRow[]> {
    const rows = await sql<StoredEventRow>`
      SELECT e.global_position::text AS position, e.event_id, e.stream_name, e.stream_version, e.type, e.schema_version, e.data,
        e.metadata, e.received_at, e.occurred_at, e.prev_hash, e.hash, r.id::text AS receipt_id, r.path, r.content_type, r.body,
        encode(r.body_sha256, 'hex') AS body_sha256, encode(sha256(r.body), 'hex') AS actual_body_sha256, r.signature_status,
        r.signature_timestamp, r.headers
      FROM events e JOIN webhook_receipts r ON r.id = e.receipt_id
      WHERE e.stream_name = ANY (${streamNames}::text[])
      ORDER BY e.global_position`.execute(this.db);
    return rows.rows;
  }

  private async withRecordings(rows: LegDbRow[]): Promise<StoredLeg[]> {
    if (rows.length === 0) return [];
    const recs = await sql<RecordingDbRow>`
      SELECT r.provider, r.recording_id, r.call_id, r.root_call_id, r.url, r.duration_sec, r.scope, r.created_at
      FROM recordings r JOIN unnest(${rows.map((x) => x.provider)}::text[], ${rows.map((x) => x.call_id)}::text[]) AS t(p, c)
        ON r.provider = t.p AND r.call_id = t.c
      ORDER BY r.created_at, r.recording_id`.execute(this.db);
    const byLeg = new Map<string, RecordingDbRow[]>();
    for (const r of recs.rows) {
      const k = `${r.provider}\u0000${r.call_id}`;
      (byLeg.get(k) ?? byLeg.set(k, []).get(k)!).push(r);
    }
    return rows.map((r) => toStoredLeg(r, byLeg.get(`${r.provider}\u0000${r.call_id}`) ?? []));
  }
}

const toStoredLeg = (r: LegDbRow, recs: RecordingDbRow[]): StoredLeg => {
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
    recordings: recs.map((x) => ({ recordingId: x.recording_id, url: x.url, durationSec: x.duration_sec, scope: x.scope, callId: x.call_id, createdAt: x.created_at.toISOString() })),
    final: r.final,
    eventCount: r.event_count,
    lastPosition: r.last_position,
    linkConflict: r.link_conflict,
  };
  return { ...row, rootCallId: r.root_call_id, depth: r.depth };
};
