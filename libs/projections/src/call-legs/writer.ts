import { sql, type RawBuilder, type Transaction } from 'kysely';
import { arrayLiteral, LoopSlicer, PREPARED, type DB } from '@lib/db';
import {
  applyToCallLeg, cellKey, cellOf, foldCallLeg, projectCallLeg, rollupDelta, toMs, type CallLegFold, type CallLegRow, type FoldedCallLeg, type LedgerEvent, type Provider, type RollupCell,
} from '@lib/ledger';
import { childLegsNamedIn, notParked, readLegEvents, readTypeInStreams, receiptOf, retranslatedReceipts, type Cursor } from '../event-reader.js';
import { ProjectionDataError, type LiveBatch } from '../projection.js';
import { currentLegs, rollupFinish, rollupUpserts, together, type StoredLeg } from './rollups.js';
import { CALL_LEGS, legs, recs } from './schema.js';
import { beginLiveBatch, boundWhileBehind, cachedFold, dropAttempt, keepFold, trustedFold, type CachedRow } from './fold-cache.js';
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
const EMPTY_FOLD: CallLegFold = { own: new Map(), links: new Map(), events: [] };

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

/** The fields of a written row that a later batch would read it for (rollup delta, parent link). */
const rowOf = (r: CallLegRow): CachedRow => ({
  provider: r.provider, callId: r.callId, accountId: r.accountId, parentCallId: r.parentCallId, direction: r.direction, status: r.status,
  startedAt: r.startedAt, talkDurationSec: r.talkDurationSec, ringDurationSec: r.ringDurationSec, answeredBy: r.answeredBy,
});

/** A leg the batch touches, and how its row is computed. */
interface Target {
  provider: Provider;
  callId: string;
}

const push = <K, V>(m: Map<K, V[]>, k: K, v: V) => {
  const list = m.get(k);
  if (list) list.push(v);
  else m.set(k, [v]);
};

/** Each event's leg (own) and the legs it names as a child (related), by leg key. */
const byLeg = (events: readonly LedgerEvent[]) => {
  const own = new Map<string, LedgerEvent[]>();
  const related = new Map<string, LedgerEvent[]>();
  for (const e of events) {
    if (e.legId) push(own, keyOf(e.provider, e.legId), e);
    const child = (e.data as { childLegId?: string }).childLegId;
    if (child && e.legId !== child) push(related, keyOf(e.provider, child), e);
  }
  return { own, related };
};

/**
 * The parent legs' machine detections, added to `related` of each jambonz target (only a jambonz leg reads a
 * parent's AMD: projectCallLeg ignores it for the other providers). Parents are those the leg's events assert.
 */
const addParentAmd = async (trx: Transaction<DB>, g: number, targets: readonly Target[], eventsOf: (t: Target) => readonly LedgerEvent[], related: Map<string, LedgerEvent[]>) => {
  const parentsOf = new Map<string, Set<string>>();
  for (const t of targets) {
    if (t.provider !== 'jambonz') continue;
    const parents = new Set<string>();
    for (const e of eventsOf(t)) {
      const parent = e.legId === t.callId ? e.parentLegId : e.legId;
      if (parent) parents.add(parent);
    }
    if (parents.size > 0) parentsOf.set(keyOf(t.provider, t.callId), parents);
  }
  if (parentsOf.size === 0) return;
  const streams = new Set<string>();
  for (const parents of parentsOf.values()) for (const p of parents) streams.add(streamOf('jambonz', p));
  const amd = await readTypeInStreams(trx, [...streams], 'MachineDetected', notParked(CALL_LEGS, g));
  const byParent = new Map<string, LedgerEvent[]>();
  for (const r of amd) if (r.provider === 'jambonz' && r.legId) push(byParent, r.legId, r);
  for (const [k, parents] of parentsOf) for (const p of parents) for (const e of byParent.get(p) ?? []) push(related, k, e);
};

/**
 * Recomputes the rows of every leg the batch touches. Live (mode.incremental), a leg whose fold state this
 * process holds (libs/ledger call-leg-fold.ts: the events holding a role in the fold, the ids seen; fold-cache.ts)
 * has only the batch's events applied to it, which equals folding all of its events again (property-tested
 * there); a leg the generation does not have yet starts from the empty state (no row means none of its events
 * was folded). A leg without a state here (final, loaded by a rebuild, written by another instance, evicted),
 * one the state cannot answer for (an erasure, an id folded already), and every leg of a bulk load are folded
 * from all of their events, read back from the store.
 */
export const projectLegs = async (trx: Transaction<DB>, events: readonly LedgerEvent[], g: number, mode: Mode, upTo?: Cursor, live?: LiveBatch) => {
  // The states this attempt keeps describe rows it writes: if it fails (its savepoint is rolled back), they go too.
  const attempt: string[] = [];
  try {
    await project(trx, events, g, mode, attempt, upTo, live);
  } catch (err) {
    dropAttempt(attempt);
    throw err;
  }
};

const project = async (trx: Transaction<DB>, events: readonly LedgerEvent[], g: number, mode: Mode, attempt: string[], upTo?: Cursor, live?: LiveBatch) => {
  // The folds of a large batch (a projector catching up, a rebuild) yield to the event loop between legs, every
  // LOOP_SLICE_MS: in one stretch they held the service's loop for hundreds of milliseconds (loop-slices.ts).
  const slicer = new LoopSlicer();
  // Legs touched: the leg of each event, the children a parent-side event names, and the children of a
  // parent that reports machine detection (jambonz reports AMD on the parent).
  const touched = new Map<string, Target>();
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
        ON l.provider = a.p AND l.call_id = a.c`.execute(trx);
    for (const k of kids.rows) touch(k.provider, k.call_id);
    const named = await childLegsNamedIn(trx, amdParents.map((p) => streamOf(p.provider, p.callId)), notParked(CALL_LEGS, g));
    for (const k of named) touch(k.provider, k.child);
  }
  if (touched.size === 0) return;
  const targets = [...touched.values()];

  // A live batch that starts where this process's last one committed knows its cached legs' rows (fold-cache.ts):
  // only the others are read.
  const trusted = mode.incremental && live !== undefined && beginLiveBatch(g, live.from);
  const cached = new Map<string, { fold: CallLegFold; row: CachedRow }>();
  if (trusted) {
    for (const t of targets) {
      const hit = trustedFold(g, t.provider, t.callId);
      if (hit) cached.set(keyOf(t.provider, t.callId), hit);
    }
  }
  const unread = mode.incremental ? targets.filter((t) => !cached.has(keyOf(t.provider, t.callId))) : [];
  const before: StoredLeg[] = unread.length > 0 ? await currentLegs(trx, g, unread) : [];
  const prior = new Map(before.map((b) => [keyOf(b.provider, b.callId), b]));
  for (const [k, hit] of cached) prior.set(k, { ...hit.row, foldSeq: null });
  const batch = byLeg(events);
  const results = new Map<string, FoldedCallLeg>();
  // Legs whose recordings may differ from what is stored: folded in full, or given a recording by the batch.
  const recordingsOf = new Set<string>();

  // Live: the batch's events applied to each leg's state.
  const full: Target[] = [];
  const stateOf = new Map<string, CallLegFold>();
  if (mode.incremental) {
    // A receipt translated again brings events that supersede some the state holds (only a full read leaves those out).
    const receipts = [...new Set(events.map(receiptOf).filter((r): r is string => r !== undefined))];
    const redone = await retranslatedReceipts(trx, receipts);
    const retranslated = new Set<string>();
    for (const e of events) {
      if (!redone.has(receiptOf(e) ?? '')) continue;
      if (e.legId) retranslated.add(keyOf(e.provider, e.legId));
      const child = (e.data as { childLegId?: string }).childLegId;
      if (child) retranslated.add(keyOf(e.provider, child));
    }
    const applicable: Target[] = [];
    for (const t of targets) {
      const k = keyOf(t.provider, t.callId);
      const p = prior.get(k);
      // No row: none of the leg's events has been folded into this generation yet.
      const state = retranslated.has(k) ? undefined : (cached.get(k)?.fold ?? (p ? cachedFold(g, t.provider, t.callId, p.foldSeq) : EMPTY_FOLD));
      if (state) {
        stateOf.set(k, state);
        applicable.push(t);
      } else full.push(t);
    }
    const amdOf = new Map<string, LedgerEvent[]>();
    const heldOf = (t: Target) => stateOf.get(keyOf(t.provider, t.callId))!.events;
    const k = (t: Target) => keyOf(t.provider, t.callId);
    await addParentAmd(trx, g, applicable, (t) => [...heldOf(t), ...(batch.own.get(k(t)) ?? []), ...(batch.related.get(k(t)) ?? [])], amdOf);
    for (const t of applicable) {
      if (slicer.due) await slicer.yield();
      const state = stateOf.get(k(t))!;
      const related = [...(batch.related.get(k(t)) ?? []), ...(amdOf.get(k(t)) ?? [])];
      const applied = pure(`leg ${t.provider}:${t.callId}`, () => applyToCallLeg(state, { provider: t.provider, callId: t.callId, own: batch.own.get(k(t)) ?? [], related }));
      if (applied === null) {
        full.push(t);
        continue;
      }
      results.set(k(t), applied);
      if ((batch.own.get(k(t)) ?? []).some((e) => e.type === 'RecordingAvailable') || !prior.has(k(t))) recordingsOf.add(k(t));
    }
  } else full.push(...targets);

  if (full.length > 0) {
    // The batch is in hand already; only the touched legs' other events are read (live, also those committed after
    // the batch: a projector catching up folds each such leg once, and skips those events in their own batches).
    const held = mode.completeStreams ? new Set(events.map((e) => keyOf(e.provider, e.legId ?? ''))) : new Set<string>();
    const others = await readLegEvents(
      trx,
      full.filter((t) => !held.has(keyOf(t.provider, t.callId))).map((t) => streamOf(t.provider, t.callId)),
      full.map((t) => t.callId),
      events.map((e) => e.position),
      { projection: CALL_LEGS, generation: g },
      upTo,
    );
    const { own, related } = byLeg([...events, ...others]);
    await addParentAmd(trx, g, full, (t) => [...(own.get(keyOf(t.provider, t.callId)) ?? []), ...(related.get(keyOf(t.provider, t.callId)) ?? [])], related);
    for (const t of full) {
      if (slicer.due) await slicer.yield();
      const k = keyOf(t.provider, t.callId);
      const input = { provider: t.provider, callId: t.callId, own: own.get(k) ?? [], related: related.get(k) ?? [] };
      // A bulk load keeps no state: the row alone, without the role holders' pass.
      results.set(k, pure(`leg ${t.provider}:${t.callId}`, () => (mode.incremental ? foldCallLeg(input) : { row: projectCallLeg(input), fold: EMPTY_FOLD })));
      recordingsOf.add(k);
    }
  }

  const rows: CallLegRow[] = [];
  const seqs: (string | null)[] = [];
  for (const t of targets) {
    const r = results.get(keyOf(t.provider, t.callId));
    if (!r?.row) continue;
    rows.push(r.row);
    // Final legs keep theirs too: a parent's dial result or a recording often comes after the leg's own end.
    seqs.push(mode.incremental ? keepFold(g, t.provider, t.callId, r.fold, rowOf(r.row), live !== undefined, attempt) : keepFold(g, t.provider, t.callId, null));
  }
  if (live?.behind) boundWhileBehind();
  if (rows.length === 0) {
    await eraseArchivedParties(trx, g, events);
    return;
  }
  if (!mode.incremental) {
    await upsertLegs(trx, g, rows, seqs, rows);
    await eraseArchivedParties(trx, g, events);
    return;
  }
  const changes = rows.map((r) => ({ before: prior.get(keyOf(r.provider, r.callId)) ?? null, after: r }));
  const delta = pure('rollup delta', () => rollupDelta(changes));
  // The rollups' sums go with the legs' upsert, in one statement (other tables, nothing read back).
  const recorded = rows.filter((r) => recordingsOf.has(keyOf(r.provider, r.callId)));
  // A leg without a row has no recordings stored either: nothing of its to delete first.
  const recordingsWritten = await upsertLegs(trx, g, rows, seqs, recorded, rollupUpserts(g, delta), (r) => prior.has(keyOf(r.provider, r.callId)));
  await eraseArchivedParties(trx, g, events);
  // Roots and depths change only where a leg is new or its parent changed (the upsert keeps them otherwise); the
  // heal walks down from there, re-rooting whatever subtree hangs below.
  const moved = rows.filter((r) => prior.get(keyOf(r.provider, r.callId))?.parentCallId !== r.parentCallId || !prior.has(keyOf(r.provider, r.callId)));
  if (moved.length > 0) await healTrees(trx, g, moved, recordingsWritten, (r) => !prior.has(keyOf(r.provider, r.callId)));
  // Talk extremes, kept for completed cells only (what the quantiles read). A completed leg entering a cell can only
  // widen them (least/greatest); one leaving it, or changing its talk, may narrow them, which cannot be taken back
  // like a sum: those cells are recomputed from their legs. Not only cells with a non-zero delta: two legs trading
  // 61 s and 69 s for 62 s and 68 s in one bucket net to zero and still move the max.
  const entered: { cell: RollupCell; ms: number }[] = [];
  const left: { cell: RollupCell; ms: number }[] = [];
  for (const { before: b, after: a } of changes) {
    const same = b !== null && b.talkDurationSec === a.talkDurationSec && b.status === a.status && cellKey(cellOf(b)) === cellKey(cellOf(a));
    if (same) continue;
    if (b?.status === 'completed') left.push({ cell: cellOf(b), ms: toMs(b.talkDurationSec ?? 0) });
    if (a.status === 'completed') entered.push({ cell: cellOf(a), ms: toMs(a.talkDurationSec ?? 0) });
  }
  await together(rollupFinish(g, delta, entered, left))?.execute(trx);
};

/**
 * Writes the rows (with each one's fold state tag, or null), and the recordings of `recorded`: the legs whose
 * recordings may have changed (each one's are replaced whole).
 */
export const upsertLegs = async (
  trx: Transaction<DB>,
  g: number,
  rows: CallLegRow[],
  seqs: readonly (string | null)[],
  recorded: readonly CallLegRow[],
  alongside: readonly RawBuilder<unknown>[] = [],
  /** Whether a leg may have recordings stored already (false only where it is known to have no row yet). */
  mayHaveRecordings: (r: CallLegRow) => boolean = () => true,
): Promise<boolean> => {
  // Each column's array as one literal (arrayLiteral): pg's element-by-element escaping was most of the upsert's Node time.
  const col = <T>(f: (r: CallLegRow) => T) => arrayLiteral(rows.map(f));
  const upsert = sql`
    INSERT INTO ${legs(g)} (provider, call_id, account_id, parent_call_id, root_call_id, depth, direction, from_number, to_number,
      status, started_at, answered_at, ended_at, ring_duration_sec, talk_duration_sec, ring_duration_source, talk_duration_source,
      answered_by, end_reason, sip_status, conference_ids, final, event_count, last_position, link_conflict, invalid_fields, verification,
      answered_by_detail, hangup_by, end_reason_detail, started_at_source, answered_at_source, ended_at_source, pdd_sec, fold_seq)
    SELECT t.provider, t.call_id, t.account_id, t.parent_call_id, t.call_id, 0, t.direction, t.from_number, t.to_number,
      t.status, t.started_at, t.answered_at, t.ended_at, t.ring, t.talk, t.ring_src, t.talk_src, t.answered_by, t.end_reason,
      t.sip_status, coalesce(string_to_array(nullif(t.conf, ''), ','), '{}'), t.final, t.event_count, t.last_position, t.link_conflict,
      t.invalid::jsonb, t.verification,
      t.answered_by_detail, t.hangup_by, t.end_reason_detail, t.started_at_source, t.answered_at_source, t.ended_at_source, t.pdd_sec,
      t.fold_seq
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
      ${col((r) => r.pddSec)}::float8[], ${arrayLiteral(seqs)}::bigint[])
      AS t(provider, call_id, account_id, parent_call_id, direction, from_number, to_number, status, started_at, answered_at, ended_at,
        ring, talk, ring_src, talk_src, answered_by, end_reason, sip_status, conf, final, event_count, last_position, link_conflict, invalid,
        verification, answered_by_detail, hangup_by, end_reason_detail, started_at_source, answered_at_source, ended_at_source, pdd_sec, fold_seq)
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
      ended_at_source = EXCLUDED.ended_at_source, pdd_sec = EXCLUDED.pdd_sec, fold_seq = EXCLUDED.fold_seq`;
  // Prepared once per session (PREPARED, libs/db database.ts): its text depends only on which rollups have cells, and
  // its plan (a sort of the unnested rows, the conflict checks on each table's unique index) does not depend on the
  // tables' sizes, so a generic plan made while they were small stays right. Statements that join or scan the read
  // model's tables are not prepared: their generic plan would keep the scans chosen for the sizes of the day it was
  // made (the tree heal: 27 ms a call against 2.6 ms planned each time, bench/profile-notes.md).
  await sql`${sql.raw(PREPARED)} ${together([...alongside, upsert])!}`.execute(trx);

  if (recorded.length === 0) return false;
  const recRows = recorded.flatMap((r) => r.recordings.map((x) => ({ ...x, provider: r.provider })));
  const replaced = recorded.filter(mayHaveRecordings);
  if (replaced.length > 0) {
    await sql`
      DELETE FROM ${recs(g)} r USING unnest(${replaced.map((r) => r.provider)}::text[], ${replaced.map((r) => r.callId)}::text[]) AS t(p, c)
      WHERE r.provider = t.p AND r.call_id = t.c`.execute(trx);
  }
  if (recRows.length > 0) {
    // Under the leg's root as it stands (the tree heal moves them with their leg when that root changes).
    await sql`
      INSERT INTO ${recs(g)} (provider, recording_id, call_id, root_call_id, url, duration_sec, scope, created_at)
      SELECT t.p, t.rid, t.c, coalesce(l.root_call_id, t.c), t.url, t.d, t.s, t.at
      FROM unnest(${recRows.map((r) => r.provider)}::text[], ${recRows.map((r) => r.recordingId)}::text[], ${recRows.map((r) => r.callId)}::text[],
        ${recRows.map((r) => r.url)}::text[], ${recRows.map((r) => r.durationSec)}::float8[], ${recRows.map((r) => r.scope)}::text[],
        ${recRows.map((r) => r.createdAt)}::timestamptz[]) AS t(p, rid, c, url, d, s, at)
      LEFT JOIN ${legs(g)} l ON l.provider = t.p AND l.call_id = t.c
      ON CONFLICT DO NOTHING`.execute(trx);
  }
  return recRows.length > 0;
};
