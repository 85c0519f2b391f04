/**
 * What the ledger should derive from the traffic the simulator sent, from the scenario's ground truth and the
 * documented rules (docs/providers.md, "Reconstruction rules", project-call-leg.ts), not by running the ledger's code.
 *
 * Times: the ledger orders by occurredAt ?? sentAt ?? receivedAt. The simulator knows each clock except one: a
 * live run's arrival time at the ledger. So in a live run, values that rest on the arrival of an unsigned,
 * untimestamped Restcomm/Twilio request (voice requests, number status callbacks, Dial actions) are left out of
 * the expectation (field absent = not checked); every other value is predicted exactly. In a backfill
 * (`importedAtMs`) every arrival is the import time, so the same rules put a value in the call's own past only where
 * the body carries a clock (Restcomm CallTimestamp/Timestamp, Twilio Timestamp, end − provider duration).
 */
import { computeKpis, MAX_DURATION_SEC, type AnsweredBy, type Kpis, type LegStatus, type Provider } from '@lib/ledger';
import type { Delivery, Fact } from './delivery.js';
import type { ScenarioKind, SimCall, SimLeg } from './scenario.js';
import type { ExpectedIntent } from './tee.js';

export type RunMode = 'live' | 'import';

export interface ExpectedRecording {
  recordingId: string;
  scope: 'call' | 'dial' | 'utterance' | 'conference';
  durationSec: number | null;
}

export interface ExpectedLeg {
  provider: Provider;
  callId: string;
  parentCallId: string | null;
  rootCallId: string;
  depth: number;
  /** Null for a leg that sent nothing of its own (named only by its parent's Dial action). */
  direction: SimLeg['direction'] | null;
  from: string | null;
  to: string | null;
  status: LegStatus;
  answeredBy: AnsweredBy;
  /** Null while the leg is not known to have ended, or answered with no duration reported (project-call-leg.ts). */
  talkDurationSec: number | null;
  durationSource: 'provider' | 'derived' | null;
  /** Absent when this run cannot predict it (see the module comment). */
  ringDurationSec?: number | null;
  startedAt?: string | null;
  answeredAt?: string | null;
  endedAt?: string | null;
  recordings: ExpectedRecording[];
  conferenceIds: string[];
  final: boolean;
}

/**
 * One stay of a leg in a Twilio queue, as the events of its stream must show it (GET /v1/calls/{id}/events):
 * one QueueEntered per waitUrl request, then one QueueLeft with the action's QueueResult and QueueTime.
 */
export interface ExpectedQueueStay {
  callId: string;
  queueId: string;
  waitRequests: number;
  result: string;
  queueTimeSec: number;
}

export interface ExpectedCall {
  index: number;
  kind: ScenarioKind;
  provider: Provider;
  rootCallId: string;
  /** Root first, then depth-first in dial order. */
  legs: ExpectedLeg[];
  /** Present for calls that went through a queue: checked against the leg's events. */
  queues?: ExpectedQueueStay[];
  /** Tee mode (`--tee`): what the simulated app asked each dialling leg to do, checked against the tree's intent. */
  intent?: ExpectedIntent[];
}

export type ExpectedKpis = Partial<Kpis>;

export interface ExpectedOutcome {
  version: 1;
  seed: string;
  mode: RunMode;
  baseTime: string;
  /** Backfill: every import line was received at this time (plus 1 ms per line), long after the calls. */
  importedAt?: string;
  /** Time window that holds every delivery's receive time (for analytics filters). */
  window: { from: string; to: string };
  deliveries: number;
  retries: number;
  /** Highest receipt position seen by a live run: the check waits for projections to pass it. */
  maxPosition?: string;
  calls: ExpectedCall[];
  totals: ExpectedKpis;
  byProvider: Partial<Record<Provider, ExpectedKpis>>;
}

/** ms, null = no such fact, undefined = happened but its time is unknowable in this run. */
type Time = number | null | undefined;

const factTime = (d: Delivery, mode: RunMode): number | undefined => {
  if (d.providerTimeMs !== null) return d.providerTimeMs;
  if (mode === 'import') return d.receivedAtMs;
  // Live: FreeClimb and jambonz deliveries carry their send time in the verified signature; RCML ones do not.
  return d.provider === 'freeclimb' || d.provider === 'jambonz' ? d.sentAtMs : undefined;
};

const earliest = (deliveries: readonly Delivery[], callId: string, kind: Fact['kind'], mode: RunMode): Time => {
  let best: Time = null;
  for (const d of deliveries) {
    const fact = d.retry ? undefined : d.facts.find((f) => f.callId === callId && f.kind === kind);
    if (!fact) continue;
    const t = fact.atMs ?? factTime(d, mode);
    if (t === undefined) return undefined;
    if (best === null || best === undefined || t < best) best = t;
  }
  return best;
};

/** Whether the leg's start fact is dated only by its arrival (no provider time in its body, no fact time). */
const startsAtArrival = (deliveries: readonly Delivery[], callId: string): boolean => {
  const first = deliveries
    .filter((d) => !d.retry && d.facts.some((f) => f.callId === callId && f.kind === 'initiated'))
    .sort((a, b) => a.receivedAtMs - b.receivedAtMs)[0];
  if (!first) return false;
  const fact = first.facts.find((f) => f.callId === callId && f.kind === 'initiated')!;
  return fact.atMs === undefined && first.providerTimeMs === null;
};

/** The leg a delivery is about, as its body names it (RCML `CallSid`, jambonz `call_sid`, FreeClimb `callId`). */
const legOf = (d: Delivery): string | null => {
  if (d.provider === 'twilio' || d.provider === 'restcomm') return new URLSearchParams(d.body).get('CallSid');
  try {
    const body = JSON.parse(d.body) as { call_sid?: unknown; callId?: unknown };
    const id = d.provider === 'jambonz' ? body.call_sid : body.callId;
    return typeof id === 'string' ? id : null;
  } catch {
    return null;
  }
};

/** The provider clock a delivery carries: Twilio/Restcomm Timestamp, or the `time` of a jambonz conference hook. */
const providerTimeOf = (d: Delivery): number | null => {
  if (d.providerTimeMs !== null) return d.providerTimeMs;
  if (d.provider !== 'jambonz') return null;
  try {
    const time = (JSON.parse(d.body) as { time?: unknown }).time;
    const ms = typeof time === 'string' ? Date.parse(time) : NaN;
    return Number.isNaN(ms) ? null : ms;
  } catch {
    return null;
  }
};

/** Provider times carried by the deliveries a leg sent itself. */
const ownClockedTimes = (deliveries: readonly Delivery[], callId: string): number[] =>
  deliveries.filter((d) => !d.retry && legOf(d) === callId).map(providerTimeOf).filter((t): t is number => t !== null);

const earliestOf = (deliveries: readonly Delivery[], callId: string, kinds: readonly Fact['kind'][], mode: RunMode): Time => {
  let best: Time = null;
  for (const kind of kinds) {
    const t = earliest(deliveries, callId, kind, mode);
    if (t === undefined) return undefined;
    if (t !== null && (best === null || t < best!)) best = t;
  }
  return best;
};

const seconds = (v: number): number => Math.round(Math.max(0, v) * 1000) / 1000;
const iso = (t: Time): string | null | undefined => (t === undefined ? undefined : t === null ? null : new Date(t).toISOString());

/** The dial that names this leg on the parent side (Dial action / actionHook), if any. */
const namingDial = (call: SimCall, leg: SimLeg) =>
  call.dials.find((d) => d.winnerId === leg.callId || (d.winnerId === null && d.childIds.length === 1 && d.childIds[0] === leg.callId));

/**
 * Status as each provider reports it and the ledger resolves it (project-call-leg.ts): answered legs are
 * `completed`; jambonz reports a cancel as no-answer (487); Restcomm ends every unanswered leg with a bare
 * `completed`, so only a Dial action naming the leg gives its real outcome, else the ledger falls back to
 * no-answer (it rang) or failed (it did not).
 */
const statusOf = (call: SimCall, leg: SimLeg): { status: LegStatus; fallback: boolean } => {
  if (leg.answerSec !== null) return { status: 'completed', fallback: false };
  switch (call.provider) {
    case 'freeclimb':
    case 'twilio':
      return { status: leg.outcome, fallback: false };
    case 'jambonz':
      return { status: leg.outcome === 'canceled' ? 'no-answer' : leg.outcome, fallback: false };
    case 'restcomm': {
      const dial = namingDial(call, leg);
      if (dial && leg.parentCallId) return { status: leg.outcome, fallback: false };
      return { status: leg.ringSec !== null ? 'no-answer' : 'failed', fallback: true };
    }
  }
};

/**
 * An app without status callbacks (`action-hooks-only`): a leg is what its hooks say (docs/providers.md, "What is read from each webhook kind"). The root hears
 * of its answer from its gather and Dial action hooks but of no end: `in-progress`, no talk time, not final. An
 * answered FreeClimb child likewise (callConnectUrl says inProgress, nothing ends it). jambonz, Twilio and Restcomm
 * children send nothing of their own: the parent's Dial action names them with DialCallStatus, plus
 * DialCallDuration on Twilio/Restcomm (a provider talk time: final, started at end − duration, `derived`); jambonz
 * reports no dial duration, so an answered jambonz child is `completed` with no talk time and stays provisional.
 */
const hookOnlyLeg = (call: SimCall, leg: SimLeg): Pick<ExpectedLeg, 'status' | 'talkDurationSec' | 'durationSource' | 'final'> & { anonymous: boolean } => {
  const anonymous = leg.parentCallId !== null && call.provider !== 'freeclimb';
  if (leg.answerSec === null) return { status: statusOf(call, leg).status, talkDurationSec: 0, durationSource: 'derived', final: true, anonymous };
  if (!anonymous) return { status: 'in-progress', talkDurationSec: null, durationSource: null, final: false, anonymous };
  if (call.provider === 'jambonz') return { status: 'completed', talkDurationSec: null, durationSource: null, final: false, anonymous };
  return { status: 'completed', talkDurationSec: leg.talkSec, durationSource: 'provider', final: true, anonymous };
};

export function expectCall(call: SimCall, deliveries: readonly Delivery[], mode: RunMode): ExpectedCall {
  const mine = deliveries.filter((d) => d.callIndex === call.index);
  const byId = new Map(call.legs.map((l) => [l.callId, l]));
  const depthOf = (leg: SimLeg): number => (leg.parentCallId ? depthOf(byId.get(leg.parentCallId)!) + 1 : 0);
  const root = call.legs[0]!;
  const ordered: SimLeg[] = [];
  const visit = (leg: SimLeg): void => {
    ordered.push(leg);
    for (const child of call.legs.filter((l) => l.parentCallId === leg.callId)) visit(child);
  };
  visit(root);

  const legs = ordered.map((leg): ExpectedLeg => {
    const { status: reported, fallback } = statusOf(call, leg);
    const hooks = call.statusCallbacks ? null : hookOnlyLeg(call, leg);
    const status = hooks?.status ?? reported;
    const answered = status === 'completed';
    const talkDurationSec = hooks ? hooks.talkDurationSec : answered ? leg.talkSec : 0;
    const durationSource = hooks ? hooks.durationSource : answered ? 'provider' : 'derived';
    let started = earliest(mine, leg.callId, 'initiated', mode);
    const answeredAt = earliest(mine, leg.callId, 'answered', mode);
    const ownEnd = earliest(mine, leg.callId, 'ended', mode);
    const ended = ownEnd !== null ? ownEnd : earliest(mine, leg.callId, 'dial-ended', mode);
    // A leg known only from its end and a provider talk time started no later than end − talk (`derived`).
    if (started === null && answeredAt === null && durationSource === 'provider' && talkDurationSec !== null && ended !== null) {
      started = ended === undefined ? undefined : ended - talkDurationSec * 1000;
    }
    // No CallInitiated (a Twilio REST leg with only its final callback and its Url request): its earliest own event.
    if (started === null) started = earliestOf(mine, leg.callId, ['answered', 'ended'], mode);

    // A backfill's arrival is the import time: a start read from it moves back to the earliest provider clock the
    // leg's own deliveries carry (Twilio/Restcomm Timestamp), as project-call-leg.ts does for imported events.
    if (mode === 'import' && typeof started === 'number' && startsAtArrival(mine, leg.callId)) {
      const clocked = ownClockedTimes(mine, leg.callId);
      if (clocked.length > 0 && Math.min(...clocked) < started) started = Math.min(...clocked);
    }

    // Ring time: Restcomm's DialRingDuration for the leg a Dial action names (docs/providers.md, "Restcomm and Twilio quirks"), else derived (docs/providers.md, "Reconstruction rules").
    let ring: number | null | undefined;
    const dial = namingDial(call, leg);
    if (call.provider === 'restcomm' && dial && leg.parentCallId) ring = (leg.answerSec ?? leg.endSec) - leg.startSec;
    else {
      const until: Time = answeredAt !== null ? answeredAt : !answered ? ended : null;
      ring = started === undefined || until === undefined ? undefined : started === null || until === null ? null : seconds((until - started) / 1000);
      // Two clocks years apart (a backfill's provider time and its import time) make no ring time: the ledger drops
      // a derived duration above MAX_DURATION_SEC (numeric-bounds.ts).
      if (typeof ring === 'number' && ring > MAX_DURATION_SEC) ring = null;
    }

    return {
      provider: call.provider,
      callId: leg.callId,
      parentCallId: leg.parentCallId,
      rootCallId: root.callId,
      depth: depthOf(leg),
      direction: hooks?.anonymous ? null : leg.direction,
      from: hooks?.anonymous ? null : call.provider === 'restcomm' && leg.direction === 'outbound-dial' ? leg.from.replace(/^\+/, '') : leg.from,
      to: hooks?.anonymous ? null : call.provider === 'restcomm' && leg.direction === 'outbound-dial' ? leg.to.replace(/^\+/, '') : leg.to,
      status,
      answeredBy: answeredByOf(call, leg, answered, answeredAt, ended, mine, mode),
      talkDurationSec,
      durationSource,
      ...(ring === undefined ? {} : { ringDurationSec: ring }),
      ...defined('startedAt', iso(started)),
      ...defined('answeredAt', iso(answeredAt)),
      ...defined('endedAt', iso(ended)),
      recordings: call.provider === 'jambonz' ? [] : leg.recordings.map((r) => ({ recordingId: r.recordingId, scope: r.scope, durationSec: r.durationSec })).sort((a, b) => (a.recordingId < b.recordingId ? -1 : 1)),
      conferenceIds: call.provider !== 'restcomm' && leg.conference ? [leg.conference.conferenceId] : [],
      // Every answered leg gets its provider duration; only an unresolved Restcomm child stays provisional.
      final: hooks ? hooks.final : !(fallback && leg.parentCallId !== null),
    };
  });
  const queues = call.legs.flatMap((leg): ExpectedQueueStay[] => {
    const q = leg.queue;
    if (!q || call.provider !== 'twilio') return [];
    return [{ callId: leg.callId, queueId: q.queueId, waitRequests: Math.ceil((q.leaveSec - q.enterSec) / q.waitLoopSec), result: q.result, queueTimeSec: q.leaveSec - q.enterSec }];
  });
  return { index: call.index, kind: call.kind, provider: call.provider, rootCallId: root.callId, legs, ...(queues.length ? { queues } : {}) };
}

const defined = <K extends string>(key: K, value: string | null | undefined): Partial<Record<K, string | null>> =>
  value === undefined ? {} : ({ [key]: value } as Record<K, string | null>);

/**
 * AMD: FreeClimb reports only machines, on the dialled leg itself; Twilio reports AnsweredBy on the leg itself
 * (AsyncAmdStatusCallback or the final status callback); jambonz names the parent and the ledger hands the result
 * to the answered child when the hook's time lies within the child's answer..end (docs/providers.md, "jambonz quirks"); Restcomm has
 * no AMD.
 */
const answeredByOf = (call: SimCall, leg: SimLeg, answered: boolean, answeredAt: Time, ended: Time, mine: readonly Delivery[], mode: RunMode): AnsweredBy => {
  if (!leg.amd || !answered) return null;
  if (call.provider === 'freeclimb') return leg.amd.result === 'machine' ? 'machine' : null;
  // Twilio's AnsweredBy is reported on the leg itself (async callback or status callback).
  if (call.provider === 'twilio') return leg.amd.result;
  if (call.provider !== 'jambonz') return null;
  const t = earliest(mine, leg.callId, 'amd', mode);
  if (typeof t !== 'number' || typeof answeredAt !== 'number') return null;
  const inWindow = t >= answeredAt && (typeof ended !== 'number' || t <= ended);
  return inWindow ? leg.amd.result : null;
};

/**
 * KPIs of the expected legs; avgRingSec is left out when some ring time cannot be predicted. The analytics count a
 * leg in the hour it started, so a leg without a start time (a child known only from its parent's Dial action)
 * is in no window and left out.
 */
export const expectedKpis = (all: readonly ExpectedLeg[]): ExpectedKpis => {
  const legs = all.filter((l) => l.startedAt !== null);
  const kpis = computeKpis(legs.map((l) => ({ status: l.status, talkDurationSec: l.talkDurationSec, ringDurationSec: l.ringDurationSec ?? null, answeredBy: l.answeredBy })));
  if (legs.some((l) => !('ringDurationSec' in l))) {
    const { avgRingSec: _unknowable, ...rest } = kpis;
    return rest;
  }
  return kpis;
};

export function expectOutcome(args: {
  seed: string;
  mode: RunMode;
  baseTimeMs: number;
  calls: readonly SimCall[];
  deliveries: readonly Delivery[];
  importedAtMs?: number;
}): ExpectedOutcome {
  const { calls, deliveries, mode } = args;
  const byCall = new Map<number, Delivery[]>();
  for (const d of deliveries) byCall.set(d.callIndex, [...(byCall.get(d.callIndex) ?? []), d]);
  const expected = calls.map((c) => expectCall(c, byCall.get(c.index) ?? [], mode));
  const all = expected.flatMap((c) => c.legs);
  const byProvider: Partial<Record<Provider, ExpectedKpis>> = {};
  for (const p of [...new Set(all.map((l) => l.provider))].sort()) byProvider[p] = expectedKpis(all.filter((l) => l.provider === p));
  const times = deliveries.map((d) => d.receivedAtMs);
  const sent = deliveries.map((d) => d.sentAtMs);
  return {
    version: 1,
    seed: args.seed,
    mode,
    baseTime: new Date(args.baseTimeMs).toISOString(),
    ...(args.importedAtMs !== undefined ? { importedAt: new Date(args.importedAtMs).toISOString() } : {}),
    window: {
      // reduce, not Math.min(...xs): spreading hundreds of thousands of times overflows the call stack.
      from: new Date([...times, ...sent].reduce((a, b) => Math.min(a, b), args.baseTimeMs)).toISOString(),
      to: new Date([...times, ...sent].reduce((a, b) => Math.max(a, b), args.baseTimeMs) + 1000).toISOString(),
    },
    deliveries: deliveries.length,
    retries: deliveries.filter((d) => d.retry).length,
    calls: expected,
    totals: expectedKpis(all),
    byProvider,
  };
}
