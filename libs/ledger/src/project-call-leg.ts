import { lookupTable } from './lookup-table.js';
/**
 * Pure domain rules of the call-leg read model (docs/providers.md, "Reconstruction rules"). No I/O: a row is a function of the SET of
 * events given, never of their arrival order. Every rule below is either a min/max, a precedence table or a
 * "first in canonical order" choice; nothing is "last arrival wins".
 *
 * Canonical order (compareEventsCanonically): time = occurredAt ?? sentAt ?? receivedAt (first parseable), then the
 * event's status rank (CallInitiated 0, CallRinging 1, CallAnswered 2, CallCompleted 3, anything else 2), then
 * providerSeq (nulls last), then eventId, then position. Duplicates (same eventId) count once: the canonically
 * first copy is kept.
 */
import type { MachineResult, Outcome, Provider } from './call-leg.events.js';
import { weakestVerification, type AnsweredBy, type CallLegRow, type DurationSource, type LedgerEvent, type LegInvalidField, type LegStatus, type RecordingRow, type TimeSource } from './call-leg.js';
import { MAX_DURATION_SEC, numberProblem, numericFieldSchema, valueText } from './numeric-bounds.js';

export interface ProjectCallLegInput {
  provider: Provider;
  callId: string;
  /** Every event whose legId is this leg, in any order, duplicates allowed. */
  own: readonly LedgerEvent[];
  /**
   * Events on other legs that mention this leg: DialCompleted / ChildLegDialed with data.childLegId === callId, and
   * MachineDetected events of the parent leg. Anything else is ignored, so callers may over-supply.
   */
  related: readonly LedgerEvent[];
}

export const LEG_STATUS_RANK: Readonly<Record<LegStatus, number>> = {
  initiated: 0,
  ringing: 1,
  'in-progress': 2,
  completed: 3,
  busy: 3,
  'no-answer': 3,
  failed: 3,
  canceled: 3,
};

export const isTerminalStatus = (status: LegStatus): boolean => LEG_STATUS_RANK[status] === 3;

type DefinitiveOutcome = Exclude<Outcome, 'unanswered-unknown' | 'unknown'>;
/** Several definitive outcomes for one leg (conflicting reports): the most specific wins, `failed` is the catch-all. */
const OUTCOME_PRECEDENCE: readonly DefinitiveOutcome[] = ['completed', 'busy', 'no-answer', 'canceled', 'failed'];
const isDefinitive = (o: Outcome): o is DefinitiveOutcome => o !== 'unanswered-unknown' && o !== 'unknown';
const pickOutcome = (outcomes: readonly Outcome[]): DefinitiveOutcome | undefined =>
  OUTCOME_PRECEDENCE.find((o) => outcomes.includes(o));

/** Several AMD results for one leg: machine > fax > human (a machine/beep detection is the stronger evidence). */
const ANSWERED_BY_PRECEDENCE: readonly Exclude<AnsweredBy, null>[] = ['machine', 'fax', 'human'];
const ANSWERED_BY: Record<MachineResult, AnsweredBy> = { human: 'human', machine: 'machine', beep: 'machine', fax: 'fax', unknown: null };

const EVENT_RANK: Partial<Record<LedgerEvent['type'], number>> = { CallInitiated: 0, CallRinging: 1, CallAnswered: 2, CallCompleted: 3 };
const NO_TIME = Number.MAX_SAFE_INTEGER;

const parseTime = (value: string | null | undefined): number | undefined => {
  if (!value) return undefined;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? undefined : ms;
};

// Sorting compares each event's time many times over; parse each event's once (a rebuild spends a lot here).
const times = new WeakMap<LedgerEvent, number>();

/** Which clock eventTime read: the same precedence, so the API can say where each leg time came from. */
export const eventTimeSource = (e: LedgerEvent): TimeSource =>
  parseTime(e.occurredAt) !== undefined ? 'provider' : parseTime(e.sentAt) !== undefined ? 'signature' : 'received';

/**
 * FreeClimb says who ended a call only through callEndedReason (FC-openapi `CallEndedReason`): the far end hung
 * up, the app's Hangup command, or the platform's maximum call length.
 */
const FREECLIMB_HANGUP_BY = lookupTable<string>({
  farEndHangup: 'far-end',
  hangupCommand: 'application',
  maxCallDurationExceeded: 'platform',
});

/**
 * Twilio's `completed` means "answered and ended normally" (https://www.twilio.com/docs/voice/api/call-resource#call-status-values):
 * its final callback carries the real status (busy, no-answer...). Translators before projection version 4
 * applied Restcomm's rule ("completed with no positive CallDuration may be unanswered") to Twilio too and stored
 * `unanswered-unknown`; those stored events are read as what Twilio said.
 */
const ownOutcomeOf = (provider: Provider, e: LedgerEvent<'CallCompleted'>): Outcome =>
  provider === 'twilio' && e.data.outcome === 'unanswered-unknown' ? 'completed' : e.data.outcome;

/** occurredAt ?? sentAt ?? receivedAt (the first one that parses), in epoch ms. */
export const eventTime = (e: LedgerEvent): number => {
  let t = times.get(e);
  if (t === undefined) {
    t = parseTime(e.occurredAt) ?? parseTime(e.sentAt) ?? parseTime(e.receivedAt) ?? NO_TIME;
    times.set(e, t);
  }
  return t;
};

const positionOf = (e: LedgerEvent): bigint => {
  try {
    return BigInt(e.position);
  } catch {
    return -1n;
  }
};

const cmp = <T extends string | number | bigint>(a: T, b: T): number => (a < b ? -1 : a > b ? 1 : 0);

export const compareEventsCanonically = (a: LedgerEvent, b: LedgerEvent): number =>
  cmp(eventTime(a), eventTime(b)) ||
  cmp(EVENT_RANK[a.type] ?? 2, EVENT_RANK[b.type] ?? 2) ||
  cmp(a.providerSeq ?? Number.MAX_SAFE_INTEGER, b.providerSeq ?? Number.MAX_SAFE_INTEGER) ||
  cmp(a.eventId, b.eventId) ||
  cmp(positionOf(a), positionOf(b)) ||
  cmp(a.receivedAt, b.receivedAt) ||
  cmp(JSON.stringify(a.data), JSON.stringify(b.data));

/** De-duplicates by eventId (keeping the canonically first copy) and sorts canonically. */
export const canonicalEvents = (events: readonly LedgerEvent[]): LedgerEvent[] => {
  const seen = new Set<string>();
  return [...events].sort(compareEventsCanonically).filter((e) => (seen.has(e.eventId) ? false : (seen.add(e.eventId), true)));
};

const iso = (ms: number | undefined): string | null => (ms === undefined || ms === NO_TIME ? null : new Date(ms).toISOString());
/** Never negative, 3 decimals. */
const seconds = (value: number): number => Math.round(Math.max(0, value) * 1000) / 1000;
const finiteMax = (values: readonly (number | undefined)[]): number | undefined => {
  const ok = values.filter((v): v is number => typeof v === 'number' && Number.isFinite(v));
  return ok.length ? Math.max(...ok) : undefined;
};

const firstTimeOf = (events: readonly LedgerEvent[]): number | undefined => (events.length ? eventTime(events[0]!) : undefined);

const isType = <K extends LedgerEvent['type']>(type: K) => (e: LedgerEvent): e is LedgerEvent<K> => e.type === type;
const childOf = (e: LedgerEvent): string | undefined =>
  e.type === 'ChildLegDialed' || e.type === 'DialCompleted' ? (e.data as { childLegId?: string }).childLegId : undefined;

/**
 * Projects one leg. Returns null when nothing says the leg exists: no own event and no parent-side
 * ChildLegDialed/DialCompleted naming it (a parent's MachineDetected alone does not create a leg).
 *
 * Rules chosen where the providers leave room (docs/providers.md) (all order-free):
 * - Status: before a terminal fact, the max rank of own CallInitiated/CallRinging/CallAnswered (any own event
 *   means at least `initiated`). A leg is ended by an own CallCompleted or by a parent DialCompleted naming it.
 *   Once ended: answered (own CallAnswered, or an own definitive `completed`) -> `completed`; else the outcome by
 *   provider precedence: restcomm/twilio: parent DialCompleted > own CallCompleted (docs/providers.md, "Outcome rules per dialect"); freeclimb/jambonz: own
 *   CallCompleted > parent DialCompleted (FreeClimb: child callStatus beats the deprecated dialCallStatus). The
 *   parent can never make a leg `completed` when the leg itself reported a definitive loss without answering
 *   (simultaneous-ring losers keep the provider's no-answer/canceled; the jambonz 487 loser stays `no-answer` with
 *   endReason `canceled-487`). Only ambiguous outcomes ('unanswered-unknown'/'unknown') and no parent answer:
 *   `no-answer` if the leg rang (own CallRinging), else `failed`.
 * - Answer evidence: an own CallAnswered, an own definitive `completed` (Twilio's `completed`, also when an older
 *   translator stored it as `unanswered-unknown`), or an own MachineDetected (AMD runs on answered calls only).
 * - Times: startedAt = earliest own CallInitiated, else earliest own event; when the leg has no CallInitiated,
 *   CallRinging or CallAnswered at all (a final callback alone), min(that, endedAt - provider talk time), marked
 *   `derived`; answeredAt = earliest CallAnswered; endedAt = earliest own CallCompleted, else earliest parent
 *   DialCompleted naming the leg. Each time says which clock it came from (eventTimeSource).
 * - sipStatus: the canonically last SIP code of the leg's own events and of the parent DialCompleted naming it;
 *   never of the leg's own DialCompleted (that is the dialled child's answer).
 * - talkDurationSec: null until ended; 0 ('derived') for ended legs that were not `completed`; for `completed`:
 *   max own CallCompleted.durationSec ('provider'), else max parent DialCompleted.durationSec ('provider'),
 *   else endedAt - answeredAt ('derived'), else null.
 * - ringDurationSec: max parent DialCompleted.ringDurationSec ('provider'), else answeredAt - startedAt, or for an
 *   ended unanswered leg endedAt - startedAt ('derived'), else null.
 * - answeredBy: own MachineDetected, except on a jambonz leg after it started dialling (time > its first own
 *   ChildLegDialed/DialCompleted: that AMD is about the dialled child, docs/providers.md, "jambonz quirks"), plus the jambonz parent's
 *   MachineDetected when this leg is the dial winner (answered, no parent DialCompleted naming it with a
 *   non-completed outcome) and the AMD time lies in [answeredAt ?? (startedAt, exclusive), endedAt]. Results:
 *   beep -> machine, unknown -> ignored, precedence machine > fax > human.
 * - parentCallId: canonically first assertion among own parentLegId and parent-side ChildLegDialed/DialCompleted
 *   naming the leg; more than one distinct parent -> linkConflict.
 * - final: ended AND NOT (the outcome came only from the ambiguous-end fallback while the leg has a parent, so a
 *   parent DialCompleted may still resolve it) AND (status !== 'completed' OR talkDurationSource === 'provider').
 *   I.e. the terminal fact is there and, for answered legs, the provider's own duration (FreeClimb callDuration,
 *   jambonz duration, Restcomm CallDuration/DialCallDuration) has arrived. A jambonz `completed` is final without a
 *   duration (jambonz sends none when it recorded no connect time).
 */
export function projectCallLeg(input: ProjectCallLegInput): CallLegRow | null {
  const { provider, callId } = input;
  // An erasure's marker shapes nothing: its arrival only makes the projection fold the leg again, from its now
  // erased events (README "Erasure and its proof").
  const own = canonicalEvents(input.own.filter((e) => e.legId === callId && e.provider === provider && e.type !== 'PersonalDataErased'));
  const related = canonicalEvents(input.related.filter((e) => e.provider === provider && e.legId !== null && e.legId !== callId));
  const links = related.filter((e) => childOf(e) === callId);
  if (own.length === 0 && links.length === 0) return null;

  // --- numbers: every one read through its bounds (numeric-bounds.ts). Events stored before the ledger bounded
  // them at ingest may still hold anything; a bad value is reported on the leg, never projected.
  const invalid = new Map<string, LegInvalidField>();
  const report = (f: LegInvalidField) => invalid.set(`${f.position}\u0000${f.field}`, f);
  const num = (e: LedgerEvent, field: string): number | undefined => {
    const value = (e.data as unknown as Record<string, unknown>)[field];
    const schema = numericFieldSchema(e.type, field);
    if (value === undefined || value === null || !schema) return undefined;
    const reason = numberProblem(schema, value);
    if (reason === null) return value as number;
    report({ position: e.position, type: e.type, field, value: valueText(value), reason });
    return undefined;
  };

  // --- parent link (docs/providers.md, "Reconstruction rules")
  const assertions: { parent: string; event: LedgerEvent }[] = [];
  for (const e of own) if (e.parentLegId && e.parentLegId !== callId) assertions.push({ parent: e.parentLegId, event: e });
  for (const e of links) {
    const parent = e.type === 'ChildLegDialed' ? (e.data as { parentLegId?: string }).parentLegId || e.legId : e.legId;
    if (parent && parent !== callId) assertions.push({ parent, event: e });
  }
  assertions.sort((a, b) => compareEventsCanonically(a.event, b.event) || cmp(a.parent, b.parent));
  const parentCallId = assertions[0]?.parent ?? null;
  const linkConflict = new Set(assertions.map((a) => a.parent)).size > 1;

  // --- status
  const completions = own.filter(isType('CallCompleted'));
  const dials = links.filter(isType('DialCompleted'));
  for (const e of [...own, ...dials]) {
    const listed = (e.data as { invalidFields?: unknown }).invalidFields;
    if (!Array.isArray(listed)) continue;
    for (const f of listed.slice(0, 20) as { field?: unknown; value?: unknown; reason?: unknown }[]) {
      if (f && typeof f.field === 'string') {
        report({ position: e.position, type: e.type, field: f.field, value: valueText(f.value), reason: typeof f.reason === 'string' ? f.reason : 'invalid' });
      }
    }
  }
  // Machine detection runs only on an answered call, so a leg's own AMD result proves the answer (Twilio
  // AnsweredBy, FreeClimb machineDetected). A jambonz leg's AMD after it started dialling is about the child.
  const dialStart = firstTimeOf(own.filter((e) => e.type === 'ChildLegDialed' || e.type === 'DialCompleted'));
  const ownAmd = own
    .filter(isType('MachineDetected'))
    .filter((e) => !(provider === 'jambonz' && dialStart !== undefined && eventTime(e) > dialStart));
  const sawAnswer = own.some(isType('CallAnswered')) || ownAmd.length > 0;
  const rang = own.some(isType('CallRinging'));
  const ownOutcomes = completions.map((e) => ownOutcomeOf(provider, e)).filter(isDefinitive);
  const parentOutcomes = dials.map((e) => e.data.outcome).filter(isDefinitive);
  const ended = completions.length > 0 || dials.length > 0;
  let status: LegStatus;
  let fromFallback = false;
  if (!ended) {
    const rank = Math.max(sawAnswer ? 2 : 0, ...own.map((e) => EVENT_RANK[e.type] ?? 0));
    status = rank >= 2 ? 'in-progress' : rank === 1 ? 'ringing' : 'initiated';
  } else if (sawAnswer || ownOutcomes.includes('completed')) {
    status = 'completed';
  } else {
    const ownLoss = pickOutcome(ownOutcomes);
    const parentSays = pickOutcome(parentOutcomes);
    const parentFirst = provider === 'restcomm' || provider === 'twilio';
    const chosen = parentFirst ? (parentSays === 'completed' && ownLoss ? ownLoss : (parentSays ?? ownLoss)) : (ownLoss ?? parentSays);
    if (chosen) status = chosen;
    else {
      status = rang ? 'no-answer' : 'failed';
      fromFallback = true;
    }
  }
  const terminal = isTerminalStatus(status);

  // --- times
  const startEvent = own.find(isType('CallInitiated')) ?? own[0];
  const answerEvent = own.find(isType('CallAnswered'));
  const endEvent = ended ? (completions[0] ?? dials[0]) : undefined;
  let startedMs = startEvent ? eventTime(startEvent) : undefined;
  const answeredMs = answerEvent ? eventTime(answerEvent) : undefined;
  const endedMs = endEvent ? eventTime(endEvent) : undefined;
  const known = (ms: number | undefined): ms is number => ms !== undefined && ms !== NO_TIME;
  const sourceOf = (e: LedgerEvent | undefined): TimeSource | null => (e && known(eventTime(e)) ? eventTimeSource(e) : null);
  let startedAtSource = sourceOf(startEvent);
  // An imported delivery's receive time is when it was imported, not when the call happened (a backfill of 2018
  // calls imported today): when the start would come from such a time and the leg's own events carry a provider
  // clock earlier than it, the call started no later than the earliest of them (docs/providers.md, "Which clock each leg time comes from"). Live receive times
  // are real observations and keep precedence over a provider clock that may be skewed.
  if (startEvent && known(startedMs) && startedAtSource === 'received' && startEvent.verification === 'imported') {
    const clocked = own.filter((e) => eventTimeSource(e) === 'provider').map(eventTime).filter(known);
    const earliest = clocked.length > 0 ? Math.min(...clocked) : undefined;
    if (earliest !== undefined && earliest < startedMs) {
      startedMs = earliest;
      startedAtSource = 'provider';
    }
  }

  // --- durations
  let talkDurationSec: number | null = null;
  let talkDurationSource: DurationSource | null = null;
  if (terminal && status !== 'completed') {
    talkDurationSec = 0;
    talkDurationSource = 'derived';
  } else if (status === 'completed') {
    const reported = finiteMax(completions.map((e) => num(e, 'durationSec'))) ?? finiteMax(dials.map((e) => num(e, 'durationSec')));
    if (reported !== undefined) {
      talkDurationSec = seconds(reported);
      talkDurationSource = 'provider';
    } else if (known(answeredMs) && known(endedMs)) {
      talkDurationSec = seconds((endedMs - answeredMs) / 1000);
      talkDurationSource = 'derived';
    }
  }
  // Only a final callback arrived (Twilio's default): the call started no later than its end minus the talk time
  // the provider reported, which keeps a backfilled call in its own hour rather than the hour of its last callback.
  const progress = own.some((e) => e.type === 'CallInitiated' || e.type === 'CallRinging' || e.type === 'CallAnswered');
  if (!progress && talkDurationSource === 'provider' && talkDurationSec !== null && known(endedMs)) {
    const implied = endedMs - Math.round(talkDurationSec * 1000);
    if (!known(startedMs) || implied < startedMs) {
      startedMs = implied;
      startedAtSource = 'derived';
    }
  }
  let ringDurationSec: number | null = null;
  let ringDurationSource: DurationSource | null = null;
  const reportedRing = finiteMax(dials.map((e) => num(e, 'ringDurationSec')));
  if (reportedRing !== undefined) {
    ringDurationSec = seconds(reportedRing);
    ringDurationSource = 'provider';
  } else if (known(startedMs)) {
    const until = known(answeredMs) ? answeredMs : terminal && status !== 'completed' && known(endedMs) ? endedMs : undefined;
    if (until !== undefined) {
      ringDurationSec = seconds((until - startedMs) / 1000);
      ringDurationSource = 'derived';
    }
  }

  // Derived from event times: provider clocks can be years apart (a bad Timestamp), which no call lasts.
  if (talkDurationSource === 'derived' && talkDurationSec !== null && talkDurationSec > MAX_DURATION_SEC) {
    report({ position: null, type: null, field: 'talkDurationSec', value: valueText(talkDurationSec), reason: `derived from event times: above ${MAX_DURATION_SEC} s` });
    talkDurationSec = null;
    talkDurationSource = null;
  }
  if (ringDurationSource === 'derived' && ringDurationSec !== null && ringDurationSec > MAX_DURATION_SEC) {
    report({ position: null, type: null, field: 'ringDurationSec', value: valueText(ringDurationSec), reason: `derived from event times: above ${MAX_DURATION_SEC} s` });
    ringDurationSec = null;
    ringDurationSource = null;
  }

  // --- answeredBy (AMD attribution, docs/providers.md, "jambonz quirks")
  const amd: LedgerEvent<'MachineDetected'>[] = [...ownAmd];
  const parentAmdUsed: LedgerEvent[] = [];
  const winner =
    (status === 'in-progress' || status === 'completed') && !parentOutcomes.some((o) => o !== 'completed');
  if (provider === 'jambonz' && parentCallId && winner) {
    for (const e of related.filter(isType('MachineDetected'))) {
      if (e.legId !== parentCallId) continue;
      const t = eventTime(e);
      const afterStart = known(answeredMs) ? t >= answeredMs : known(startedMs) ? t > startedMs : true;
      const beforeEnd = known(endedMs) ? t <= endedMs : true;
      if (afterStart && beforeEnd) {
        amd.push(e);
        parentAmdUsed.push(e);
      }
    }
  }
  const answeredResults = new Set(amd.map((e) => ANSWERED_BY[e.data.result]));
  const answeredBy: AnsweredBy = ANSWERED_BY_PRECEDENCE.find((r) => answeredResults.has(r)) ?? null;
  const amdSorted = canonicalEvents(amd) as LedgerEvent<'MachineDetected'>[];
  const decisive = amdSorted.find((e) => ANSWERED_BY[e.data.result] === answeredBy) ?? amdSorted[0];
  const answeredByDetail = decisive ? (decisive.data.detail ?? decisive.data.result) : null;

  // --- party, account
  const firstNonNull = <T>(values: readonly (T | null | undefined)[]): T | null => values.find((v) => v !== null && v !== undefined) ?? null;
  const initiated = own.filter(isType('CallInitiated'));
  const partyField = <F extends 'direction' | 'from' | 'to'>(field: F) =>
    firstNonNull([...initiated.map((e) => e.data[field]), ...own.map((e) => e.party?.[field])]);
  const accountId = firstNonNull([...own.map((e) => e.accountId), ...links.map((e) => e.accountId)]);

  // --- end reason, SIP status
  const endReason = firstNonNull(completions.map((e) => e.data.endReason || null));
  const endReasonDetail = firstNonNull(completions.map((e) => e.data.endReasonDetail || null));
  const hangupBy = firstNonNull(
    completions.map((e) => e.data.terminatedBy || (provider === 'freeclimb' && e.data.endReason ? FREECLIMB_HANGUP_BY[e.data.endReason] : null) || null),
  );
  // A leg's own DialCompleted reports the dialled child's SIP answer (jambonz dial_sip_status, Restcomm
  // DialSipResponseCode): it belongs to the child, which reads it through `dials`, never to the caller.
  const sipCandidates = canonicalEvents([...own.filter((e) => e.type !== 'DialCompleted'), ...dials])
    .map((e) => num(e, 'sipStatus'))
    .filter((v) => v !== undefined);
  const sipStatus = sipCandidates.at(-1) ?? null;

  // --- conferences, recordings
  const conferenceIds = [
    ...new Set(
      own
        .filter((e) => e.type === 'ConferenceJoined' || e.type === 'ConferenceLeft' || e.type === 'ConferenceStatusChanged')
        .map((e) => (e.data as { conferenceId: string }).conferenceId)
        .filter(Boolean),
    ),
  ].sort();
  const recordingGroups = new Map<string, LedgerEvent<'RecordingAvailable'>[]>();
  for (const e of own.filter(isType('RecordingAvailable'))) {
    const id = e.data.recordingId || e.data.url;
    recordingGroups.set(id, [...(recordingGroups.get(id) ?? []), e]);
  }
  const recordings: RecordingRow[] = [...recordingGroups.entries()]
    .sort(([a], [b]) => cmp(a, b))
    .map(([recordingId, events]) => {
      const first = events[0]!;
      const duration = finiteMax(events.map((e) => num(e, 'durationSec')));
      return {
        recordingId,
        url: first.data.url,
        durationSec: duration === undefined ? null : seconds(duration),
        scope: first.data.scope,
        callId,
        createdAt: iso(eventTime(first)) ?? first.receivedAt,
      };
    });

  // --- bookkeeping
  const positions = (own.length ? own : links).map(positionOf);
  const lastPosition = positions.reduce((a, b) => (b > a ? b : a)).toString();
  // jambonz sends `duration` only when it knows the connect time; a `completed` without one is still its last word.
  const jambonzFinal = provider === 'jambonz' && completions.some((e) => e.data.outcome === 'completed');
  const final =
    terminal && !(fromFallback && parentCallId !== null) && (status !== 'completed' || talkDurationSource === 'provider' || jambonzFinal);
  const firstRinging = own.find(isType('CallRinging'));
  const pddSec =
    firstRinging && known(startedMs) && startedAtSource !== 'derived' && known(eventTime(firstRinging))
      ? seconds((eventTime(firstRinging) - startedMs) / 1000)
      : null;

  return {
    provider,
    accountId,
    callId,
    parentCallId,
    direction: partyField('direction'),
    from: partyField('from'),
    to: partyField('to'),
    status,
    startedAt: iso(startedMs),
    answeredAt: iso(answeredMs),
    endedAt: iso(endedMs),
    ringDurationSec,
    talkDurationSec,
    ringDurationSource,
    talkDurationSource,
    answeredBy,
    endReason,
    sipStatus,
    conferenceIds,
    recordings,
    final,
    eventCount: own.length,
    lastPosition,
    linkConflict,
    answeredByDetail,
    hangupBy,
    endReasonDetail,
    startedAtSource: known(startedMs) ? startedAtSource : null,
    answeredAtSource: sourceOf(answerEvent),
    endedAtSource: sourceOf(endEvent),
    pddSec,
    invalidFields: [...invalid.values()]
      .sort((a, b) => cmp(a.position === null ? -1n : BigInt(a.position), b.position === null ? -1n : BigInt(b.position)) || cmp(a.field, b.field))
      .slice(0, 50),
    // Every event that could shape the row: its own, the parent-side events naming it, the parent AMD attached to it.
    verification: weakestVerification([...own, ...links, ...parentAmdUsed]),
  };
}
