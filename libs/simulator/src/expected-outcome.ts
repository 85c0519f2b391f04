/**
 * What the ledger should derive from the traffic the simulator sent, from the scenario's ground truth and the
 * documented rules (docs/providers.md, "Reconstruction rules", project-call-leg.ts), not by running the ledger's code.
 *
 * Times: the ledger orders by occurredAt ?? sentAt ?? receivedAt. The simulator knows each clock except one: a
 * live run's arrival time at the ledger. So in a live run, values that rest on the arrival of an unsigned,
 * untimestamped Restcomm/Twilio request (voice requests, number status callbacks, Dial actions) are left out of
 * the expectation (field absent = not checked); every other value is predicted exactly.
 */
import { computeKpis, type AnsweredBy, type Kpis, type LegStatus, type Provider } from '@lib/ledger';
import type { Delivery, Fact } from './delivery.js';
import type { ScenarioKind, SimCall, SimLeg } from './scenario.js';

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
  direction: SimLeg['direction'];
  from: string;
  to: string;
  status: LegStatus;
  answeredBy: AnsweredBy;
  talkDurationSec: number;
  durationSource: 'provider' | 'derived';
  /** Absent when this run cannot predict it (see the module comment). */
  ringDurationSec?: number | null;
  startedAt?: string | null;
  answeredAt?: string | null;
  endedAt?: string | null;
  recordings: ExpectedRecording[];
  conferenceIds: string[];
  final: boolean;
}

export interface ExpectedCall {
  index: number;
  kind: ScenarioKind;
  provider: Provider;
  rootCallId: string;
  /** Root first, then depth-first in dial order. */
  legs: ExpectedLeg[];
}

export type ExpectedKpis = Partial<Kpis>;

export interface ExpectedOutcome {
  version: 1;
  seed: string;
  mode: RunMode;
  baseTime: string;
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
    const { status, fallback } = statusOf(call, leg);
    const answered = status === 'completed';
    const started = earliest(mine, leg.callId, 'initiated', mode);
    const answeredAt = earliest(mine, leg.callId, 'answered', mode);
    const ownEnd = earliest(mine, leg.callId, 'ended', mode);
    const ended = ownEnd !== null ? ownEnd : earliest(mine, leg.callId, 'dial-ended', mode);

    // Ring time: Restcomm's DialRingDuration for the leg a Dial action names (§3.6), else derived (§4.6-6).
    let ring: number | null | undefined;
    const dial = namingDial(call, leg);
    if (call.provider === 'restcomm' && dial && leg.parentCallId) ring = (leg.answerSec ?? leg.endSec) - leg.startSec;
    else {
      const until: Time = answeredAt !== null ? answeredAt : !answered ? ended : null;
      ring = started === undefined || until === undefined ? undefined : started === null || until === null ? null : seconds((until - started) / 1000);
    }

    return {
      provider: call.provider,
      callId: leg.callId,
      parentCallId: leg.parentCallId,
      rootCallId: root.callId,
      depth: depthOf(leg),
      direction: leg.direction,
      from: call.provider === 'restcomm' && leg.direction === 'outbound-dial' ? leg.from.replace(/^\+/, '') : leg.from,
      to: call.provider === 'restcomm' && leg.direction === 'outbound-dial' ? leg.to.replace(/^\+/, '') : leg.to,
      status,
      answeredBy: answeredByOf(call, leg, answered, answeredAt, ended, mine, mode),
      talkDurationSec: answered ? leg.talkSec : 0,
      durationSource: answered ? 'provider' : 'derived',
      ...(ring === undefined ? {} : { ringDurationSec: ring }),
      ...defined('startedAt', iso(started)),
      ...defined('answeredAt', iso(answeredAt)),
      ...defined('endedAt', iso(ended)),
      recordings: call.provider === 'jambonz' ? [] : leg.recordings.map((r) => ({ recordingId: r.recordingId, scope: r.scope, durationSec: r.durationSec })).sort((a, b) => (a.recordingId < b.recordingId ? -1 : 1)),
      conferenceIds: call.provider !== 'restcomm' && leg.conference ? [leg.conference.conferenceId] : [],
      // Every answered leg gets its provider duration; only an unresolved Restcomm child stays provisional.
      final: !(fallback && leg.parentCallId !== null),
    };
  });
  return { index: call.index, kind: call.kind, provider: call.provider, rootCallId: root.callId, legs };
}

const defined = <K extends string>(key: K, value: string | null | undefined): Partial<Record<K, string | null>> =>
  value === undefined ? {} : ({ [key]: value } as Record<K, string | null>);

/**
 * AMD: FreeClimb reports only machines, on the dialled leg itself; Twilio reports AnsweredBy on the leg itself
 * (AsyncAmdStatusCallback or the final status callback); jambonz names the parent and the ledger hands the result
 * to the answered child when the hook's time lies within the child's answer..end (§2.11-4, §4.6-8); Restcomm has
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

/** KPIs of the expected legs; avgRingSec is left out when some ring time cannot be predicted. */
export const expectedKpis = (legs: readonly ExpectedLeg[]): ExpectedKpis => {
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
