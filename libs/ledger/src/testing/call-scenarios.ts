/**
 * Generated call scenarios for property tests (pure; fast-check arbitraries only, no I/O).
 *
 * A scenario is one call tree (a root leg, up to 3 simultaneously dialled children, up to 2 grandchildren under a
 * child that answered) rendered as the events the translators would produce for one dialect:
 * FreeClimb-like, jambonz-like or Restcomm/Twilio-like (see libs/providers/src/<dialect>/*.translate.ts).
 * `events` are in arrival order with realistic times, unique content-derived eventIds and increasing positions.
 * `legs` is the ground truth the projection should reconstruct from those events (only legs that have at least
 * one event naming them), as the documented rules of project-call-leg.ts resolve it.
 */
import fc from 'fast-check';
import type { Direction, MachineResult, Provider } from '../call-leg.events.js';
import type { AnsweredBy, LedgerEvent, LegStatus } from '../call-leg.js';

export type Dialect = 'freeclimb' | 'jambonz' | 'rcml';
type Loss = 'busy' | 'no-answer' | 'failed' | 'canceled';

export interface ScenarioLegTruth {
  callId: string;
  parentCallId: string | null;
  answered: boolean;
  status: LegStatus;
  answeredBy: AnsweredBy;
  /** Talk seconds as the provider reports them (answered legs only). */
  talkSec: number | null;
}

export interface CallScenario {
  provider: Provider;
  dialect: Dialect;
  rootCallId: string;
  legs: ScenarioLegTruth[];
  events: LedgerEvent[];
}

interface Plan {
  answered: boolean;
  rang: boolean;
  loss: Loss;
  ringSec: number;
  talkSec: number;
  recording: boolean;
  amd: MachineResult | null;
  conference: boolean;
  noise: boolean;
  /** Restcomm/Twilio: status callbacks configured for this leg. */
  callbacks: boolean;
  children: Plan[];
  winner: number | null;
}

const baseArb = fc.record({
  answered: fc.boolean(),
  rang: fc.boolean(),
  loss: fc.constantFrom<Loss>('busy', 'no-answer', 'failed', 'canceled'),
  ringSec: fc.integer({ min: 1, max: 25 }),
  talkSec: fc.integer({ min: 0, max: 300 }),
  recording: fc.boolean(),
  amd: fc.option(fc.constantFrom<MachineResult>('human', 'machine', 'fax', 'beep', 'unknown'), { nil: null }),
  conference: fc.boolean(),
  noise: fc.boolean(),
  callbacks: fc.oneof({ weight: 4, arbitrary: fc.constant(true) }, { weight: 1, arbitrary: fc.constant(false) }),
});

const planArb = (depth: number, maxChildren: number): fc.Arbitrary<Plan> =>
  depth === 0
    ? baseArb.map((b) => ({ ...b, children: [], winner: null }))
    : fc
        .record({
          base: baseArb,
          children: fc.array(planArb(depth - 1, 2), { maxLength: maxChildren }),
          winner: fc.option(fc.nat({ max: maxChildren - 1 }), { nil: null }),
        })
        .map(({ base, children, winner }) => ({ ...base, children, winner }));

const HEX = '0123456789abcdef'.split('');
const idArb = fc.array(fc.constantFrom(...HEX), { minLength: 12, maxLength: 12 }).map((a) => a.join(''));

interface Leg {
  id: string;
  parentId: string | null;
  kind: Direction;
  from: string;
  to: string;
  rang: boolean;
  answered: boolean;
  /** Truth outcome for unanswered legs. */
  loss: Loss;
  simringLoser: boolean;
  start: number;
  ringAt: number | null;
  answerAt: number | null;
  end: number;
  talkSec: number;
  plan: Plan;
  children: Leg[];
  winner: Leg | null;
}

const phone = (n: number): string => `+1555${String(1_000_000 + ((n * 7919) % 8_999_999)).padStart(7, '0')}`;

/** Lays a plan out in time (seconds from the scenario start); only answered legs dial, at most one child answers. */
const layout = (plan: Plan, id: string, parentId: string | null, kind: Direction, start: number, answered: boolean, forcedEnd: number | null, dialect: Dialect, counter: { n: number }): Leg => {
  const rang = kind === 'inbound' ? true : plan.rang;
  const ringAt = rang ? start + 1 : null;
  const answerAt = answered ? start + 1 + plan.ringSec + (rang ? 1 : 0) : null;
  const leg: Leg = {
    id, parentId, kind, rang, answered, from: phone(counter.n * 3 + 1), to: phone(counter.n * 3 + 2),
    loss: dialect === 'jambonz' && plan.loss === 'canceled' ? 'no-answer' : plan.loss,
    simringLoser: false, start, ringAt, answerAt, end: start + 1 + plan.ringSec, talkSec: 0, plan, children: [], winner: null,
  };
  if (answered && answerAt !== null) {
    let end = answerAt + Math.max(plan.talkSec, plan.amd || plan.conference || plan.noise ? 2 : 0);
    if (plan.children.length) {
      const dialAt = answerAt + 2;
      const winnerIdx = plan.winner !== null && plan.winner < plan.children.length ? plan.winner : null;
      const childIds = plan.children.map(() => `${id.slice(0, -1)}${String.fromCharCode(97 + counter.n++)}`);
      const winner = winnerIdx === null ? null : layout(plan.children[winnerIdx]!, childIds[winnerIdx]!, id, 'outbound-dial', dialAt, true, null, dialect, counter);
      leg.children = plan.children.map((child, i) => {
        if (i === winnerIdx) return winner!;
        const loser = layout({ ...child, children: [] }, childIds[i]!, id, 'outbound-dial', dialAt, false, winner ? winner.answerAt : null, dialect, counter);
        if (winner) {
          loser.simringLoser = true;
          loser.loss = dialect === 'jambonz' ? 'no-answer' : 'canceled';
        }
        return loser;
      });
      leg.winner = winner;
      end = Math.max(end, ...leg.children.map((c) => c.end + 2));
    }
    leg.end = end;
    leg.talkSec = end - answerAt;
  } else if (forcedEnd !== null) {
    leg.end = Math.max(start + 1, forcedEnd);
  }
  return leg;
};

const flatten = (leg: Leg): Leg[] => [leg, ...leg.children.flatMap(flatten)];

interface Draft {
  at: number;
  type: LedgerEvent['type'];
  legId: string;
  data: object;
  parentLegId?: string | null;
  party?: LedgerEvent['party'];
  /** Restcomm family C: Timestamp (whole seconds) and SequenceNumber. */
  stamped?: boolean;
  seq?: number | null;
  /** jambonz conference `time` (ms precision). */
  occurredMs?: number;
}

const partyOf = (leg: Leg) => ({ direction: leg.kind, from: leg.from, to: leg.to });

const freeclimbEvents = (legs: Leg[]): Draft[] => {
  const out: Draft[] = [];
  for (const leg of legs) {
    const env = { parentLegId: leg.parentId, party: partyOf(leg) };
    if (leg.kind === 'inbound') {
      out.push({ at: leg.start, type: 'CallInitiated', legId: leg.id, data: { direction: 'inbound', from: leg.from, to: leg.to }, party: partyOf(leg), parentLegId: null });
      out.push({ at: leg.start, type: 'CallRinging', legId: leg.id, data: {}, party: partyOf(leg), parentLegId: null });
    } else if (leg.kind === 'outbound-api') {
      const at = leg.answered ? leg.answerAt! : leg.end;
      out.push({ at, type: 'CallInitiated', legId: leg.id, data: { direction: 'outbound-api', from: leg.from, to: leg.to }, ...env });
      if (leg.answered) out.push({ at, type: 'CallAnswered', legId: leg.id, data: {}, ...env });
      else out.push({ at, type: 'CallCompleted', legId: leg.id, data: { outcome: leg.loss }, ...env });
    } else {
      const p = leg.parentId!;
      out.push({ at: leg.start, type: 'ChildLegDialed', legId: p, data: { childLegId: leg.id, parentLegId: p } });
      out.push({ at: leg.start, type: 'CallInitiated', legId: leg.id, data: { direction: 'outbound-dial', from: null, to: null }, parentLegId: p, party: { direction: 'outbound-dial', from: null, to: null } });
      const at = leg.answered ? leg.answerAt! : leg.end;
      out.push({ at, type: 'ChildLegDialed', legId: p, data: { childLegId: leg.id, parentLegId: p } });
      if (leg.answered) out.push({ at, type: 'CallAnswered', legId: leg.id, data: {}, ...env });
      else {
        out.push({ at, type: 'CallCompleted', legId: leg.id, data: { outcome: leg.loss }, ...env });
        out.push({ at, type: 'DialCompleted', legId: p, data: { childLegId: leg.id, outcome: leg.loss } });
      }
    }
    if (leg.answered && leg.plan.amd && leg.kind !== 'inbound') {
      const result = leg.plan.amd === 'machine' || leg.plan.amd === 'beep' ? 'machine' : leg.plan.amd === 'fax' ? 'fax' : 'unknown';
      out.push({ at: leg.answerAt! + 1, type: 'MachineDetected', legId: leg.id, data: { result, detail: result === 'machine' ? 'answering machine' : result === 'fax' ? 'fax modem' : 'unknown' }, ...env });
    }
    if (leg.answered && leg.plan.noise) out.push({ at: leg.answerAt! + 1, type: 'AppHook', legId: leg.id, data: { kind: 'redirect' }, ...env });
    if (leg.answered && leg.plan.conference) {
      out.push({ at: leg.answerAt! + 1, type: 'ConferenceJoined', legId: leg.id, data: { conferenceId: `CF${leg.id}` }, ...env });
      out.push({ at: leg.end, type: 'ConferenceLeft', legId: leg.id, data: { conferenceId: `CF${leg.id}` }, ...env });
    }
    out.push({
      at: leg.end, type: 'CallCompleted', legId: leg.id,
      data: { outcome: leg.answered ? 'completed' : leg.loss, durationSec: leg.answered ? leg.talkSec : 0, endReason: leg.answered ? 'remoteHangup' : 'noAnswer' }, ...env,
    });
    if (leg.answered && leg.plan.recording) {
      out.push({ at: leg.end, type: 'RecordingAvailable', legId: leg.id, data: { recordingId: `RE${leg.id}`, url: `https://fc.example/Recordings/RE${leg.id}`, durationSec: leg.talkSec, scope: 'call' }, parentLegId: leg.parentId });
    }
  }
  return out;
};

const JAMBONZ_SIP: Record<Loss, number> = { busy: 486, 'no-answer': 480, failed: 503, canceled: 487 };

const jambonzEvents = (legs: Leg[]): Draft[] => {
  const out: Draft[] = [];
  for (const leg of legs) {
    const env = { parentLegId: leg.parentId, party: partyOf(leg) };
    out.push({ at: leg.start, type: 'CallInitiated', legId: leg.id, data: { direction: leg.kind, from: leg.from, to: leg.to }, ...env });
    if (leg.parentId) out.push({ at: leg.start, type: 'ChildLegDialed', legId: leg.parentId, data: { childLegId: leg.id, parentLegId: leg.parentId } });
    if (leg.ringAt !== null && leg.kind !== 'inbound') out.push({ at: leg.ringAt, type: 'CallRinging', legId: leg.id, data: { earlyMedia: false, sipStatus: 180 }, ...env });
    if (leg.answered) {
      out.push({ at: leg.answerAt!, type: 'CallAnswered', legId: leg.id, data: { sipStatus: 200 }, ...env });
      out.push({ at: leg.end, type: 'CallCompleted', legId: leg.id, data: { outcome: 'completed', durationSec: leg.talkSec, terminatedBy: leg.parentId ? 'jambonz' : 'caller' }, ...env });
    } else {
      const sipStatus = leg.simringLoser ? 487 : JAMBONZ_SIP[leg.loss];
      const endReason = leg.parentId && leg.loss === 'no-answer' && sipStatus === 487 ? { endReason: 'canceled-487' } : {};
      out.push({ at: leg.end, type: 'CallCompleted', legId: leg.id, data: { outcome: leg.loss, sipStatus, ...endReason }, ...env });
    }
    if (leg.answered && leg.plan.amd && leg.kind !== 'inbound') {
      // AMD hooks carry the parent's call_sid when the leg was dialled (docs/providers.md, "jambonz quirks").
      const result = leg.plan.amd;
      const amdLeg = leg.parentId ?? leg.id;
      out.push({ at: leg.answerAt! + 1, type: 'MachineDetected', legId: amdLeg, data: { result, detail: `amd_${result}` }, parentLegId: null });
    }
    if (leg.answered && leg.plan.noise) out.push({ at: leg.answerAt! + 1, type: 'DtmfReceived', legId: leg.id, data: { digits: '1', source: 'dial-capture' }, ...env });
    if (leg.answered && leg.plan.conference) {
      const conferenceId = `conf-${leg.id}`;
      out.push({ at: leg.answerAt! + 1, type: 'ConferenceJoined', legId: leg.id, data: { conferenceId, members: 1 }, ...env, occurredMs: (leg.answerAt! + 1) * 1000 + 123 });
      out.push({ at: leg.end, type: 'ConferenceLeft', legId: leg.id, data: { conferenceId, members: 0 }, ...env, occurredMs: leg.end * 1000 + 7 });
    }
    if (leg.answered && leg.plan.recording) {
      out.push({ at: leg.end + 5, type: 'RecordingAvailable', legId: leg.id, data: { url: `https://jambonz.example/v1/Accounts/acc/RecentCalls/${leg.id}/record`, scope: 'call' } });
    }
    if (leg.children.length) {
      const dialEnd = Math.max(...leg.children.map((c) => c.end));
      const named = leg.winner ?? (leg.children.length === 1 ? leg.children[0]! : null);
      const outcome = leg.winner ? 'completed' : named ? named.loss : 'no-answer';
      const sipStatus = leg.winner ? 200 : named ? JAMBONZ_SIP[named.loss] : 487;
      out.push({ at: dialEnd, type: 'DialCompleted', legId: leg.id, data: { ...(named ? { childLegId: named.id } : {}), outcome, sipStatus }, ...env });
      if (named) out.push({ at: dialEnd, type: 'ChildLegDialed', legId: leg.id, data: { childLegId: named.id, parentLegId: leg.id }, ...env });
    }
  }
  return out;
};

const rcmlEvents = (legs: Leg[], provider: Provider): Draft[] => {
  const out: Draft[] = [];
  for (const leg of legs) {
    const env = { parentLegId: leg.parentId, party: partyOf(leg) };
    const recordingId = `RE${leg.id.padEnd(32, '0').slice(0, 32)}`;
    if (leg.kind === 'inbound') {
      // Voice requests (family A) and the number status callback (B): no Timestamp, no SequenceNumber.
      out.push({ at: leg.start, type: 'CallInitiated', legId: leg.id, data: { direction: 'inbound', from: leg.from, to: leg.to }, ...env });
      out.push({ at: leg.start, type: 'CallRinging', legId: leg.id, data: {}, ...env });
      out.push({ at: leg.answerAt!, type: 'CallInitiated', legId: leg.id, data: { direction: 'inbound', from: leg.from, to: leg.to }, ...env });
      out.push({ at: leg.answerAt!, type: 'CallAnswered', legId: leg.id, data: {}, ...env });
      out.push({ at: leg.end, type: 'CallCompleted', legId: leg.id, data: { outcome: 'completed', durationSec: leg.talkSec }, ...env });
    } else if (leg.plan.callbacks || !leg.parentId) {
      const c = { ...env, stamped: true };
      out.push({ at: leg.start, type: 'CallInitiated', legId: leg.id, data: { direction: leg.kind, from: leg.from, to: leg.to }, ...c, seq: 0 });
      if (leg.parentId) out.push({ at: leg.start, type: 'ChildLegDialed', legId: leg.parentId, data: { childLegId: leg.id, parentLegId: leg.parentId }, stamped: true });
      if (leg.ringAt !== null) out.push({ at: leg.ringAt, type: 'CallRinging', legId: leg.id, data: {}, ...c, seq: 1 });
      if (leg.answered) out.push({ at: leg.answerAt!, type: 'CallAnswered', legId: leg.id, data: { sipStatus: 200 }, ...c, seq: 2 });
      const outcome = leg.answered ? (leg.talkSec > 0 ? 'completed' : 'unanswered-unknown') : provider === 'twilio' ? leg.loss : 'unanswered-unknown';
      out.push({ at: leg.end, type: 'CallCompleted', legId: leg.id, data: { outcome, durationSec: leg.answered ? leg.talkSec : 0 }, ...c, seq: 3 });
      if (leg.answered && leg.plan.recording) {
        out.push({ at: leg.end, type: 'RecordingAvailable', legId: leg.id, data: { recordingId, url: `https://rc.example/recordings/${recordingId}.wav`, durationSec: leg.talkSec, scope: 'call' }, ...c, seq: 3 });
      }
    }
    if (leg.answered && leg.plan.noise) out.push({ at: leg.answerAt! + 1, type: 'DtmfReceived', legId: leg.id, data: { digits: '42', source: 'gather' }, ...env });
    if (leg.children.length) {
      // Dial action (family D): no Timestamp; DialCallSid only names the answered child (or the only one).
      const dialEnd = Math.max(...leg.children.map((c) => c.end));
      const named = leg.winner ?? (leg.children.length === 1 ? leg.children[0]! : null);
      const outcome = leg.winner ? 'completed' : named ? named.loss : 'no-answer';
      const ringDurationSec = named ? (named.answerAt ?? named.end) - named.start : undefined;
      const data = { ...(named ? { childLegId: named.id } : {}), outcome, ...(leg.winner ? { durationSec: leg.winner.talkSec } : {}), ...(ringDurationSec === undefined ? {} : { ringDurationSec }) };
      out.push({ at: dialEnd, type: 'DialCompleted', legId: leg.id, data, ...env });
      if (named) out.push({ at: dialEnd, type: 'ChildLegDialed', legId: leg.id, data: { childLegId: named.id, parentLegId: leg.id }, ...env });
      if (leg.plan.recording && leg.winner) {
        const dialRec = `RE${leg.id.padEnd(31, '0').slice(0, 31)}d`;
        out.push({ at: dialEnd, type: 'RecordingAvailable', legId: leg.id, data: { recordingId: dialRec, url: `https://rc.example/recordings/${dialRec}.wav`, scope: 'dial' }, ...env });
      }
    }
  }
  return out;
};

/** Truth per leg, as the documented rules resolve what the dialect reports. */
const truthOf = (leg: Leg, dialect: Dialect, provider: Provider, drafts: Draft[]): ScenarioLegTruth | null => {
  const mentioned = drafts.some((d) => d.legId === leg.id || (d.data as { childLegId?: string }).childLegId === leg.id);
  if (!mentioned) return null;
  let status: LegStatus;
  if (leg.answered) status = 'completed';
  else if (dialect !== 'rcml' || provider === 'twilio') status = leg.loss;
  else {
    const parent = leg.parentId ? drafts.find((d) => d.type === 'DialCompleted' && (d.data as { childLegId?: string }).childLegId === leg.id) : undefined;
    status = parent ? leg.loss : leg.rang ? 'no-answer' : 'failed';
  }
  const amd = leg.answered && leg.kind !== 'inbound' && dialect !== 'rcml' ? leg.plan.amd : null;
  // FreeClimb only reports machine/fax (anything else is translated to 'unknown').
  const answeredBy: AnsweredBy =
    amd === 'human' && dialect !== 'freeclimb' ? 'human' : amd === 'machine' || amd === 'beep' ? 'machine' : amd === 'fax' ? 'fax' : null;
  return { callId: leg.id, parentCallId: leg.parentId, answered: leg.answered, status, answeredBy, talkSec: leg.answered ? leg.talkSec : null };
};

/** FNV-1a (two 32-bit lanes): a stable content id, as the ledger derives eventIds from content. */
const contentId = (text: string): string => {
  let a = 0x811c9dc5;
  let b = 0x01000193 ^ 0x9e3779b9;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    a = Math.imul(a ^ c, 0x01000193) >>> 0;
    b = Math.imul(b ^ c, 0x01000193 + 2) >>> 0;
  }
  return a.toString(16).padStart(8, '0') + b.toString(16).padStart(8, '0');
};

const render = (drafts: Draft[], provider: Provider, accountId: string, baseMs: number, seed: number, firstPosition: number): LedgerEvent[] => {
  let state = seed >>> 0 || 1;
  const latency = (): number => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return 20 + (state % 900);
  };
  const stamped = drafts.map((d, i) => {
    const sentMs = baseMs + d.at * 1000;
    const rcml = provider === 'restcomm' || provider === 'twilio';
    const event: Omit<LedgerEvent, 'eventId' | 'position'> = {
      type: d.type,
      data: d.data as LedgerEvent['data'],
      provider,
      legId: d.legId,
      accountId,
      parentLegId: d.parentLegId ?? null,
      party: d.party ?? null,
      providerSeq: d.seq ?? null,
      occurredAt: d.occurredMs !== undefined ? new Date(baseMs + d.occurredMs).toISOString() : d.stamped ? new Date(sentMs).toISOString() : null,
      // FreeClimb and jambonz sign with whole seconds; Restcomm does not sign.
      sentAt: rcml ? null : new Date(sentMs).toISOString(),
      receivedAt: new Date(sentMs + latency()).toISOString(),
    };
    return { event, i };
  });
  stamped.sort((x, y) => (x.event.receivedAt < y.event.receivedAt ? -1 : x.event.receivedAt > y.event.receivedAt ? 1 : x.i - y.i));
  return stamped.map(({ event }, k) => ({ ...event, eventId: contentId(JSON.stringify(event)), position: String(firstPosition + k) }));
};

export const callScenarioArb: fc.Arbitrary<CallScenario> = fc
  .record({
    provider: fc.constantFrom<Provider>('freeclimb', 'jambonz', 'restcomm', 'twilio'),
    id: idArb,
    inbound: fc.boolean(),
    root: planArb(2, 3),
    seed: fc.integer({ min: 1, max: 0x7fffffff }),
    // 2024-01-01 .. 2025-01-01, whole seconds.
    baseSec: fc.integer({ min: 1_704_067_200, max: 1_735_689_600 }),
    firstPosition: fc.integer({ min: 1, max: 1_000_000_000 }),
  })
  .map(({ provider, id, inbound, root, seed, baseSec, firstPosition }) => {
    const dialect: Dialect = provider === 'freeclimb' ? 'freeclimb' : provider === 'jambonz' ? 'jambonz' : 'rcml';
    const rootId = `${dialect === 'freeclimb' ? 'CA' : dialect === 'jambonz' ? 'jz-' : 'ID'}${id}0`;
    const kind: Direction = inbound ? 'inbound' : 'outbound-api';
    const answered = inbound || root.answered;
    const tree = layout(answered ? root : { ...root, children: [] }, rootId, null, kind, 0, answered, null, dialect, { n: 0 });
    const legs = flatten(tree);
    const drafts = dialect === 'freeclimb' ? freeclimbEvents(legs) : dialect === 'jambonz' ? jambonzEvents(legs) : rcmlEvents(legs, provider);
    const truth = legs.map((l) => truthOf(l, dialect, provider, drafts)).filter((t): t is ScenarioLegTruth => t !== null);
    const events = render(drafts, provider, `AC${id}`, baseSec * 1000, seed, firstPosition);
    return { provider, dialect, rootCallId: rootId, legs: truth, events };
  });

/**
 * The input projectCallLeg expects for one leg, from a whole event set: own = legId matches; related =
 * ChildLegDialed/DialCompleted naming it as child, plus MachineDetected of any leg asserted as its parent.
 */
export const legInputsOf = (events: readonly LedgerEvent[]): { provider: Provider; callId: string; own: LedgerEvent[]; related: LedgerEvent[] }[] => {
  const ids = new Set<string>();
  const key = (provider: Provider, id: string) => `${provider}\u0000${id}`;
  for (const e of events) {
    if (e.legId) ids.add(key(e.provider, e.legId));
    const child = (e.data as { childLegId?: string }).childLegId;
    if ((e.type === 'ChildLegDialed' || e.type === 'DialCompleted') && child) ids.add(key(e.provider, child));
  }
  return [...ids].sort().map((k) => {
    const [provider, callId] = k.split('\u0000') as [Provider, string];
    const mine = events.filter((e) => e.provider === provider);
    const own = mine.filter((e) => e.legId === callId);
    const links = mine.filter((e) => (e.type === 'ChildLegDialed' || e.type === 'DialCompleted') && (e.data as { childLegId?: string }).childLegId === callId);
    const parents = new Set([...own.map((e) => e.parentLegId), ...links.map((e) => e.legId)].filter((p): p is string => !!p && p !== callId));
    const amd = mine.filter((e) => e.type === 'MachineDetected' && e.legId !== null && parents.has(e.legId));
    return { provider, callId, own, related: [...links, ...amd] };
  });
};
