import { sql, type Transaction } from 'kysely';
import type { DB } from '@lib/db';
import { cellKey, cellOf, projectCallLeg, rollupDelta, toMs, type CallLegRow, type LedgerEvent, type Provider, type RollupCell } from '@lib/ledger';
import { childLegsNamedIn, notParked, readLegEvents, readTypeInStreams, type Cursor } from '../event-reader.js';
import { ProjectionDataError } from '../projection.js';
import { applyRollupDelta, currentLegs, refreshExtremes, widenExtremes } from './rollups.js';
import { CALL_LEGS, legs, recs } from './schema.js';
import { healTrees } from './trees.js';
import { legStreamName } from '@lib/event-store';

export const streamOf = (provider: string, callId: string) => legStreamName(provider as Provider, callId);
export const keyOf = (provider: string, callId: string) => `${provider}\u0000${callId}`;

export interface Mode {
  /** The batch holds every event of its legs' own streams (bulk load), so they are not read again. */
  completeStreams: boolean;
  /** Heal roots and keep the rollups current after each batch (live), or once at the end (bulk load). */
  incremental: boolean;
}
export const LIVE: Mode = { completeStreams: false, incremental: true };
export const BULK: Mode = { completeStreams: true, incremental: false };
export const BULK_ISOLATED: Mode = { completeStreams: false, incremental: false };

/** The pure fold failing on an event's content is as deterministic as SQL refusing a value: parkable. */
export const pure = <T>(what: string, f: () => T): T => {
  try {
    return f();
  } catch (err) {
    throw new ProjectionDataError(`${what}: ${(err as Error).message}`, { cause: err });
  }
};

/**
 * An erasure that reached a leg's events in an archived month names the parties it erased there
 * (`PersonalDataErased.parties`): the leg's row is a summary of dropped events that no fold can recompute, so those
 * columns are set to `[erased]` as they stand. Counts, status and times stay.
 */
const eraseArchivedParties = async (trx: Transaction<DB>, g: number, events: readonly LedgerEvent[]) => {
  const marks = events.flatMap((e) => {
    const parties = e.type === 'PersonalDataErased' && e.legId ? ((e.data as { parties?: string[] }).parties ?? []) : [];
    return parties.length > 0 ? [{ provider: e.provider, callId: e.legId!, from: parties.includes('from'), to: parties.includes('to') }] : [];
  });
  if (marks.length === 0) return;
  await sql`
    UPDATE ${legs(g)} l SET
      from_number = CASE WHEN m.f THEN '[erased]' ELSE l.from_number END,
      to_number = CASE WHEN m.t THEN '[erased]' ELSE l.to_number END
    FROM unnest(${marks.map((x) => x.provider)}::text[], ${marks.map((x) => x.callId)}::text[], ${marks.map((x) => x.from)}::boolean[], ${marks.map((x) => x.to)}::boolean[]) AS m(p, c, f, t)
    WHERE l.provider = m.p AND l.call_id = m.c`.execute(trx);
};

export const projectLegs = async (trx: Transaction<DB>, events: readonly LedgerEvent[], g: number, mode: Mode, upTo?: Cursor) => {
  // Legs touched: the leg of each event, the children a parent-side event names, and the children of a
  // parent that reports machine detection (jambonz reports AMD on the parent).
  const touched = new Map<string, { provider: Provider; callId: string }>();
  const touch = (provider: Provider, callId: string | null | undefined) => {
    if (callId) touched.set(keyOf(provider, callId), { provider, callId });
  };
  const amdParents: { provider: Provider; callId: string }[] = [];
  for (const e of events) {
    if (!e.legId) continue;
    touch(e.provider, e.legId);
    const child = (e.data as { childLegId?: string }).childLegId;
    if (child) touch(e.provider, child);
    if (e.type === 'MachineDetected') amdParents.push({ provider: e.provider, callId: e.legId });
  }
  if (amdParents.length > 0) {
    const kids = await sql<{ provider: Provider; call_id: string }>`
      SELECT provider, call_id FROM ${legs(g)} l
      JOIN unnest(${amdParents.map((p) => p.provider)}::text[], ${amdParents.map((p) => p.callId)}::text[]) AS a(p, c)
        ON l.provider = a.p AND l.parent_call_id = a.c`.execute(trx);
    for (const k of kids.rows) touch(k.provider, k.call_id);
    const named = await childLegsNamedIn(trx, amdParents.map((p) => streamOf(p.provider, p.callId)), notParked(CALL_LEGS, g));
    for (const k of named) touch(k.provider, k.child);
  }
  if (touched.size === 0) return;

  const targets = [...touched.values()];
  // The batch is in hand already; only the touched legs' other events are read.
  const held = mode.completeStreams ? new Set(events.map((e) => keyOf(e.provider, e.legId ?? ''))) : new Set<string>();
  const others = await readLegEvents(
    trx,
    targets.filter((t) => !held.has(keyOf(t.provider, t.callId))).map((t) => streamOf(t.provider, t.callId)),
    targets.map((t) => t.callId),
    events.map((e) => e.position),
    { projection: CALL_LEGS, generation: g },
    upTo,
  );
  const all = [...events, ...others];
  const own = new Map<string, LedgerEvent[]>();
  const related = new Map<string, LedgerEvent[]>();
  for (const e of all) {
    if (e.legId) (own.get(keyOf(e.provider, e.legId)) ?? own.set(keyOf(e.provider, e.legId), []).get(keyOf(e.provider, e.legId))!).push(e);
    const child = (e.data as { childLegId?: string }).childLegId;
    if (child && e.legId !== child) {
      const k = keyOf(e.provider, child);
      (related.get(k) ?? related.set(k, []).get(k)!).push(e);
    }
  }
  // Parents' machine detection, for the rule that attaches a parent-reported AMD to the dial winner.
  const parentStreams = new Set<string>();
  for (const t of targets) {
    const k = keyOf(t.provider, t.callId);
    for (const e of [...(own.get(k) ?? []), ...(related.get(k) ?? [])]) {
      const parent = e.legId === t.callId ? e.parentLegId : e.legId;
      if (parent) parentStreams.add(streamOf(t.provider, parent));
    }
  }
  if (parentStreams.size > 0) {
    const amd = await readTypeInStreams(trx, [...parentStreams], 'MachineDetected', notParked(CALL_LEGS, g));
    const byParent = new Map<string, LedgerEvent[]>();
    for (const r of amd) {
      const k = keyOf(r.provider, r.legId!);
      (byParent.get(k) ?? byParent.set(k, []).get(k)!).push(r);
    }
    for (const t of targets) {
      const k = keyOf(t.provider, t.callId);
      const parents = new Set<string>();
      for (const e of [...(own.get(k) ?? []), ...(related.get(k) ?? [])]) {
        const parent = e.legId === t.callId ? e.parentLegId : e.legId;
        if (parent) parents.add(keyOf(t.provider, parent));
      }
      for (const p of parents) for (const e of byParent.get(p) ?? []) (related.get(k) ?? related.set(k, []).get(k)!).push(e);
    }
  }

  const rows: CallLegRow[] = [];
  for (const t of targets) {
    const k = keyOf(t.provider, t.callId);
    const row = pure(`leg ${t.provider}:${t.callId}`, () =>
      projectCallLeg({ provider: t.provider, callId: t.callId, own: own.get(k) ?? [], related: related.get(k) ?? [] }),
    );
    if (row) rows.push(row);
  }
  if (rows.length === 0) {
    await eraseArchivedParties(trx, g, events);
    return;
  }
  const before = mode.incremental ? await currentLegs(trx, g, rows) : [];
  await upsertLegs(trx, g, rows);
  await eraseArchivedParties(trx, g, events);
  if (!mode.incremental) return;
  await healTrees(trx, g, rows);
  const prior = new Map(before.map((b) => [keyOf(b.provider, b.callId), b]));
  const changes = rows.map((r) => ({ before: prior.get(keyOf(r.provider, r.callId)) ?? null, after: r }));
  const delta = pure('rollup delta', () => rollupDelta(changes));
  await applyRollupDelta(trx, g, delta);
  // Talk extremes, kept for completed cells only (what the quantiles read). A completed leg entering a cell can only
  // widen them (least/greatest); one leaving it, or changing its talk, may narrow them, which cannot be taken back
  // like a sum: those cells are recomputed from their legs. Not only cells with a non-zero delta: two legs trading
  // 61 s and 69 s for 62 s and 68 s in one bucket net to zero and still move the max.
  const entered: { cell: RollupCell; ms: number }[] = [];
  const left: RollupCell[] = [];
  for (const { before: b, after: a } of changes) {
    const same = b !== null && b.talkDurationSec === a.talkDurationSec && b.status === a.status && cellKey(cellOf(b)) === cellKey(cellOf(a));
    if (same) continue;
    if (b?.status === 'completed') left.push(cellOf(b));
    if (a.status === 'completed') entered.push({ cell: cellOf(a), ms: toMs(a.talkDurationSec ?? 0) });
  }
  await widenExtremes(trx, g, entered);
  await refreshExtremes(trx, g, left);
};

export const upsertLegs = async (trx: Transaction<DB>, g: number, rows: CallLegRow[]) => {
  const col = <T>(f: (r: CallLegRow) => T) => rows.map(f);
  await sql`
    INSERT INTO ${legs(g)} (provider, call_id, account_id, parent_call_id, root_call_id, depth, direction, from_number, to_number,
      status, started_at, answered_at, ended_at, ring_duration_sec, talk_duration_sec, ring_duration_source, talk_duration_source,
      answered_by, end_reason, sip_status, conference_ids, final, event_count, last_position, link_conflict, invalid_fields, verification,
      answered_by_detail, hangup_by, end_reason_detail, started_at_source, answered_at_source, ended_at_source, pdd_sec)
    SELECT t.provider, t.call_id, t.account_id, t.parent_call_id, t.call_id, 0, t.direction, t.from_number, t.to_number,
      t.status, t.started_at, t.answered_at, t.ended_at, t.ring, t.talk, t.ring_src, t.talk_src, t.answered_by, t.end_reason,
      t.sip_status, coalesce(string_to_array(nullif(t.conf, ''), ','), '{}'), t.final, t.event_count, t.last_position, t.link_conflict,
      t.invalid::jsonb, t.verification,
      t.answered_by_detail, t.hangup_by, t.end_reason_detail, t.started_at_source, t.answered_at_source, t.ended_at_source, t.pdd_sec
    FROM unnest(${col((r) => r.provider)}::text[], ${col((r) => r.callId)}::text[], ${col((r) => r.accountId)}::text[],
      ${col((r) => r.parentCallId)}::text[], ${col((r) => r.direction)}::text[], ${col((r) => r.from)}::text[], ${col((r) => r.to)}::text[],
      ${col((r) => r.status)}::text[], ${col((r) => r.startedAt)}::timestamptz[], ${col((r) => r.answeredAt)}::timestamptz[],
      ${col((r) => r.endedAt)}::timestamptz[], ${col((r) => r.ringDurationSec)}::float8[], ${col((r) => r.talkDurationSec)}::float8[],
      ${col((r) => r.ringDurationSource)}::text[], ${col((r) => r.talkDurationSource)}::text[], ${col((r) => r.answeredBy)}::text[],
      ${col((r) => r.endReason)}::text[], ${col((r) => r.sipStatus)}::int[], ${col((r) => r.conferenceIds.join(','))}::text[],
      ${col((r) => r.final)}::bool[], ${col((r) => r.eventCount)}::int[], ${col((r) => r.lastPosition)}::bigint[], ${col((r) => r.linkConflict)}::bool[],
      ${col((r) => JSON.stringify(r.invalidFields))}::text[], ${col((r) => r.verification)}::text[],
      ${col((r) => r.answeredByDetail)}::text[], ${col((r) => r.hangupBy)}::text[], ${col((r) => r.endReasonDetail)}::text[],
      ${col((r) => r.startedAtSource)}::text[], ${col((r) => r.answeredAtSource)}::text[], ${col((r) => r.endedAtSource)}::text[],
      ${col((r) => r.pddSec)}::float8[])
      AS t(provider, call_id, account_id, parent_call_id, direction, from_number, to_number, status, started_at, answered_at, ended_at,
        ring, talk, ring_src, talk_src, answered_by, end_reason, sip_status, conf, final, event_count, last_position, link_conflict, invalid,
        verification, answered_by_detail, hangup_by, end_reason_detail, started_at_source, answered_at_source, ended_at_source, pdd_sec)
    ORDER BY t.provider, t.call_id
    ON CONFLICT (provider, call_id) DO UPDATE SET
      account_id = EXCLUDED.account_id, parent_call_id = EXCLUDED.parent_call_id, direction = EXCLUDED.direction,
      from_number = EXCLUDED.from_number, to_number = EXCLUDED.to_number, status = EXCLUDED.status,
      started_at = EXCLUDED.started_at, answered_at = EXCLUDED.answered_at, ended_at = EXCLUDED.ended_at,
      ring_duration_sec = EXCLUDED.ring_duration_sec, talk_duration_sec = EXCLUDED.talk_duration_sec,
      ring_duration_source = EXCLUDED.ring_duration_source, talk_duration_source = EXCLUDED.talk_duration_source,
      answered_by = EXCLUDED.answered_by, end_reason = EXCLUDED.end_reason, sip_status = EXCLUDED.sip_status,
      conference_ids = EXCLUDED.conference_ids, final = EXCLUDED.final, event_count = EXCLUDED.event_count,
      last_position = EXCLUDED.last_position, link_conflict = EXCLUDED.link_conflict, invalid_fields = EXCLUDED.invalid_fields,
      verification = EXCLUDED.verification,
      answered_by_detail = EXCLUDED.answered_by_detail, hangup_by = EXCLUDED.hangup_by, end_reason_detail = EXCLUDED.end_reason_detail,
      started_at_source = EXCLUDED.started_at_source, answered_at_source = EXCLUDED.answered_at_source,
      ended_at_source = EXCLUDED.ended_at_source, pdd_sec = EXCLUDED.pdd_sec`.execute(trx);

  const recRows = rows.flatMap((r) => r.recordings.map((x) => ({ ...x, provider: r.provider })));
  await sql`
    DELETE FROM ${recs(g)} r USING unnest(${col((r) => r.provider)}::text[], ${col((r) => r.callId)}::text[]) AS t(p, c)
    WHERE r.provider = t.p AND r.call_id = t.c`.execute(trx);
  if (recRows.length > 0) {
    await sql`
      INSERT INTO ${recs(g)} (provider, recording_id, call_id, root_call_id, url, duration_sec, scope, created_at)
      SELECT t.p, t.rid, t.c, t.c, t.url, t.d, t.s, t.at
      FROM unnest(${recRows.map((r) => r.provider)}::text[], ${recRows.map((r) => r.recordingId)}::text[], ${recRows.map((r) => r.callId)}::text[],
        ${recRows.map((r) => r.url)}::text[], ${recRows.map((r) => r.durationSec)}::float8[], ${recRows.map((r) => r.scope)}::text[],
        ${recRows.map((r) => r.createdAt)}::timestamptz[]) AS t(p, rid, c, url, d, s, at)
      ON CONFLICT DO NOTHING`.execute(trx);
  }
};
