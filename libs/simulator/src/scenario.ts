/**
 * The scenario model: what really happened on each simulated call (ground truth), before any provider reports
 * it. Pure and seeded: `generateCalls` is a function of its options only (no clock, no Math.random), so the same
 * seed and base time give the same calls, leg ids, numbers and timings on every run.
 *
 * Times inside a call are whole seconds from the call's start: FreeClimb and jambonz sign with whole seconds and
 * Restcomm/Twilio timestamps have second precision, so whole seconds keep every clock the ledger may use exact.
 */
import type { Direction, Provider } from '@lib/ledger';
import { Prng } from './prng.js';

export const SCENARIO_KINDS = [
  'inbound-answered',
  'outbound-busy',
  'outbound-no-answer',
  'outbound-failed',
  'outbound-canceled',
  'call-blast',
  'simring',
  'sequential-dial',
  'amd-machine',
  'amd-human',
  'recording-call',
  'recording-dial',
  'recording-utterance',
  'recording-conference',
  'conference',
  'rest-child',
  'action-hooks-only',
  'queue',
] as const;
export type ScenarioKind = (typeof SCENARIO_KINDS)[number];

export type SimProvider = Provider;
export const SIM_PROVIDERS: readonly SimProvider[] = ['freeclimb', 'jambonz', 'twilio', 'restcomm'];

const ALL_BUT = (...excluded: ScenarioKind[]): ScenarioKind[] => SCENARIO_KINDS.filter((k) => !excluded.includes(k));

/**
 * What each provider can express (docs/providers.md): jambonz has no recording webhook ("jambonz requests") and no
 * REST leg with a parent; Restcomm reports no AMD and no conference membership, and neither RCML dialect a REST child (Twilio
 * reports AMD through AnsweredBy and conferences through the conference statusCallback, docs/providers.md); a
 * call blast (independent children of one parent) is FreeClimb's OutDial pattern; Restcomm has no conference
 * recording callback (docs/providers.md, "Restcomm and Twilio quirks"). `queue` is Twilio's `<Enqueue>` (waitUrl requests, then the action with QueueResult and
 * QueueTime); `action-hooks-only` is an app that configured no status callback, so that only its action hooks
 * (gather, Dial action, callConnectUrl...) report the legs' state (docs/providers.md, "What is read from each webhook kind").
 */
export const KINDS_BY_PROVIDER: Readonly<Record<SimProvider, readonly ScenarioKind[]>> = {
  freeclimb: ALL_BUT('recording-dial', 'queue'),
  jambonz: ALL_BUT('call-blast', 'recording-call', 'recording-dial', 'recording-utterance', 'recording-conference', 'rest-child', 'queue'),
  twilio: ALL_BUT('call-blast', 'rest-child'),
  restcomm: ALL_BUT('call-blast', 'amd-machine', 'amd-human', 'conference', 'rest-child', 'recording-conference', 'queue'),
};

export type LegOutcome = 'completed' | 'busy' | 'no-answer' | 'failed' | 'canceled';

export interface SimRecording {
  recordingId: string;
  scope: 'call' | 'dial' | 'utterance' | 'conference';
  /** Seconds as the provider reports them; null when the provider's callback carries no duration. */
  durationSec: number | null;
  /** Second (from call start) the recording is announced. */
  atSec: number;
  url: string;
}

export interface SimLeg {
  callId: string;
  parentCallId: string | null;
  direction: Direction;
  from: string;
  to: string;
  startSec: number;
  /** Far end alerting; null when it never rang (busy, failed before alerting). */
  ringSec: number | null;
  answerSec: number | null;
  endSec: number;
  /** Truth; the provider may report it differently (e.g. jambonz reports a cancel as no-answer 487). */
  outcome: LegOutcome;
  /** Answer to hang-up, whole seconds; 0 for unanswered legs. */
  talkSec: number;
  /** `asyncAmd`: Twilio's AsyncAmdStatusCallback rather than AnsweredBy on the final status callback. */
  amd: { result: 'human' | 'machine'; atSec: number; asyncAmd?: boolean } | null;
  /** Cancelled because a sibling of a simultaneous ring answered first. */
  simringLoser: boolean;
  recordings: SimRecording[];
  conference: { conferenceId: string; name: string; joinSec: number; leaveSec: number } | null;
  /**
   * Twilio `<Enqueue>`: waits in the queue from `enterSec` (a waitUrl request each `waitLoopSec` of hold music) to
   * `leaveSec`; `bridged` = an agent dequeued it, `hangup` = the caller gave up waiting.
   */
  queue: { queueId: string; enterSec: number; leaveSec: number; result: 'bridged' | 'hangup'; waitLoopSec: number } | null;
  /** Second (from call start) of the IVR input collected before a dial (action-hooks-only apps). */
  gatherSec: number | null;
}

export interface SimDial {
  parentId: string;
  childIds: string[];
  /** simring: first answer wins, others cancelled; blast: independent children; single: one target per dial verb. */
  mode: 'single' | 'simring' | 'blast';
  startSec: number;
  endSec: number;
  winnerId: string | null;
}

export interface SimCall {
  index: number;
  provider: SimProvider;
  kind: ScenarioKind;
  accountId: string;
  /** Absolute start, epoch ms (whole seconds). */
  startMs: number;
  /** Root first, then children in dial order. */
  legs: SimLeg[];
  dials: SimDial[];
  /** Provider-specific identifiers that repeat across a call's webhooks (jambonz application, Restcomm instance). */
  extra: Record<string, string>;
  /** False when the app configured no status callback: only voice requests and action hooks arrive. */
  statusCallbacks: boolean;
}

export interface GenerateOptions {
  seed: string;
  calls: number;
  provider: SimProvider | 'mixed';
  /** Live: start of the traffic. Import: end of the `days` window. Epoch ms, whole seconds. */
  baseTimeMs: number;
  mode: 'live' | 'import';
  /** Import only: call starts spread uniformly over this many days before baseTimeMs. */
  days: number;
  /** Live only: mean new calls per second (Poisson arrivals). */
  rate: number;
  /** Longest talk time of any leg, seconds. */
  maxTalkSec: number;
  /** Restrict to these kinds (each still filtered by what the provider supports). */
  kinds?: readonly ScenarioKind[];
}

/** One account per provider and seed, so that analytics can group by account. */
const accountFor = (provider: SimProvider, seed: string): string => {
  const r = new Prng(seed, 'account', provider);
  switch (provider) {
    case 'freeclimb':
      return `AC${r.hex(40)}`;
    case 'jambonz':
      return r.uuid();
    case 'twilio':
    case 'restcomm':
      return `AC${r.hex(32)}`;
  }
};

const newCallId = (provider: SimProvider, r: Prng, instance: string): string => {
  switch (provider) {
    case 'freeclimb':
      return `CA${r.hex(40)}`;
    case 'jambonz':
      return r.uuid();
    case 'twilio':
      return `CA${r.hex(32)}`;
    case 'restcomm':
      // Restcomm call SIDs carry the instance id: `ID<32 hex>-CA<32 hex>` (docs/providers.md, "Restcomm and Twilio requests").
      return `${instance}-CA${r.hex(32)}`;
  }
};

export const recordingIdFor = (provider: SimProvider, r: Prng): string => (provider === 'freeclimb' ? `RE${r.hex(40)}` : `RE${r.hex(32)}`);

const AREA_CODES = ['212', '312', '415', '617', '630', '847', '305', '206', '512', '720'];
const phone = (r: Prng): string => `+1${r.pick(AREA_CODES)}555${String(r.int(0, 9999)).padStart(4, '0')}`;

/** Talk time: mostly short calls, a long tail, capped. */
const talkTime = (r: Prng, maxTalkSec: number): number => Math.max(1, Math.min(maxTalkSec, Math.round(r.exponential(Math.min(90, maxTalkSec / 2)))));

/** The kinds a run may draw for a provider, honouring --kinds. */
export const kindsFor = (provider: SimProvider, only?: readonly ScenarioKind[]): ScenarioKind[] =>
  KINDS_BY_PROVIDER[provider].filter((k) => !only || only.includes(k));

/** Absolute call starts: Poisson arrivals from the base time (live) or uniform over the day window (import). */
const callStarts = (opts: GenerateOptions): number[] => {
  const r = new Prng(opts.seed, 'starts');
  const starts: number[] = [];
  if (opts.mode === 'live') {
    let t = 0;
    for (let i = 0; i < opts.calls; i++) {
      starts.push(opts.baseTimeMs + Math.floor(t) * 1000);
      t += r.exponential(1 / Math.max(opts.rate, 1e-6));
    }
  } else {
    const span = Math.max(1, Math.round(opts.days * 86_400));
    for (let i = 0; i < opts.calls; i++) starts.push(opts.baseTimeMs - r.int(1, span) * 1000);
    starts.sort((a, b) => a - b);
  }
  return starts;
};

export function generateCalls(opts: GenerateOptions): SimCall[] {
  const starts = callStarts(opts);
  const out: SimCall[] = [];
  for (let i = 0; i < opts.calls; i++) {
    const r = new Prng(opts.seed, 'call', i);
    const provider = opts.provider === 'mixed' ? r.pick(SIM_PROVIDERS) : opts.provider;
    const kinds = kindsFor(provider, opts.kinds);
    if (kinds.length === 0) throw new RangeError(`no scenario kind in --kinds is supported by ${provider}`);
    const kind = r.pick(kinds);
    out.push(buildCall(i, provider, kind, accountFor(provider, opts.seed), starts[i]!, r, opts.maxTalkSec));
  }
  return out;
}

interface Builder {
  r: Prng;
  provider: SimProvider;
  instance: string;
  maxTalk: number;
  legs: SimLeg[];
  dials: SimDial[];
}

const baseLeg = (b: Builder, parentCallId: string | null, direction: Direction, from: string, to: string, startSec: number): SimLeg => ({
  callId: newCallId(b.provider, b.r, b.instance),
  parentCallId,
  direction,
  from,
  to,
  startSec,
  ringSec: null,
  answerSec: null,
  endSec: startSec,
  outcome: 'completed',
  talkSec: 0,
  amd: null,
  simringLoser: false,
  recordings: [],
  conference: null,
  queue: null,
  gatherSec: null,
});

/** An answered leg: rings, answers, talks. Returns the leg with endSec set from its own talk time. */
const answered = (b: Builder, leg: SimLeg, talkSec = talkTime(b.r, b.maxTalk)): SimLeg => {
  leg.ringSec = leg.startSec + b.r.int(1, 3);
  leg.answerSec = leg.ringSec + b.r.int(2, 18);
  leg.talkSec = talkSec;
  leg.endSec = leg.answerSec + talkSec;
  leg.outcome = 'completed';
  return leg;
};

/** An unanswered leg ending with `outcome`; busy and failed never alert, the others ring first. */
const unanswered = (b: Builder, leg: SimLeg, outcome: Exclude<LegOutcome, 'completed'>): SimLeg => {
  leg.outcome = outcome;
  leg.talkSec = 0;
  switch (outcome) {
    case 'busy':
      leg.endSec = leg.startSec + b.r.int(1, 3);
      break;
    case 'failed':
      leg.endSec = leg.startSec + b.r.int(0, 2);
      break;
    case 'no-answer':
      leg.ringSec = leg.startSec + b.r.int(1, 3);
      leg.endSec = leg.ringSec + b.r.int(20, 30);
      break;
    case 'canceled':
      leg.ringSec = leg.startSec + b.r.int(1, 3);
      leg.endSec = leg.ringSec + b.r.int(2, 12);
      break;
  }
  return leg;
};

/** Inbound root answered by the application one or two seconds after it arrives (it rings from the start). */
const inboundRoot = (b: Builder, caller: string, number: string): SimLeg => {
  const leg = baseLeg(b, null, 'inbound', caller, number, 0);
  leg.ringSec = 0;
  leg.answerSec = b.r.int(1, 2);
  leg.outcome = 'completed';
  leg.endSec = leg.answerSec + talkTime(b.r, b.maxTalk);
  leg.talkSec = leg.endSec - leg.answerSec;
  b.legs.push(leg);
  return leg;
};

/** Stretches an answered parent so that it hangs up a little after its last child. */
const coverChildren = (b: Builder, parent: SimLeg): void => {
  const last = Math.max(...b.legs.filter((l) => l.parentCallId === parent.callId).map((l) => l.endSec), parent.endSec);
  parent.endSec = last + b.r.int(1, 4);
  parent.talkSec = parent.endSec - parent.answerSec!;
};

const dialSimring = (b: Builder, parent: SimLeg, count: number, withWinner: boolean): SimDial => {
  const start = parent.answerSec! + b.r.int(1, 3);
  const children = Array.from({ length: count }, () => baseLeg(b, parent.callId, 'outbound-dial', parent.to, phone(b.r), start));
  let winner: SimLeg | null = null;
  if (withWinner) {
    winner = b.r.pick(children);
    answered(b, winner);
  }
  for (const c of children) {
    if (c === winner) continue;
    c.ringSec = start + b.r.int(1, 3);
    if (winner) {
      // Losers are cancelled the moment the winner answers.
      c.outcome = 'canceled';
      c.simringLoser = true;
      c.endSec = Math.max(c.ringSec, winner.answerSec!);
    } else {
      c.outcome = 'no-answer';
      c.endSec = start + 25;
    }
  }
  b.legs.push(...children);
  const dial: SimDial = {
    parentId: parent.callId,
    childIds: children.map((c) => c.callId),
    mode: 'simring',
    startSec: start,
    endSec: Math.max(...children.map((c) => c.endSec)),
    winnerId: winner?.callId ?? null,
  };
  b.dials.push(dial);
  return dial;
};

const dialSingle = (b: Builder, parent: SimLeg, start: number, outcome: LegOutcome): SimLeg => {
  const child = baseLeg(b, parent.callId, 'outbound-dial', parent.to, phone(b.r), start);
  if (outcome === 'completed') answered(b, child);
  else unanswered(b, child, outcome);
  b.legs.push(child);
  b.dials.push({ parentId: parent.callId, childIds: [child.callId], mode: 'single', startSec: start, endSec: child.endSec, winnerId: outcome === 'completed' ? child.callId : null });
  return child;
};

const recordingUrl = (provider: SimProvider, accountId: string, recordingId: string): string => {
  switch (provider) {
    case 'freeclimb':
      return `https://www.freeclimb.com/apiserver/Accounts/${accountId}/Recordings/${recordingId}/Download`;
    case 'twilio':
      return `https://api.twilio.com/2010-04-01/Accounts/${accountId}/Recordings/${recordingId}`;
    case 'restcomm':
      return `http://rc.example.net:8080/restcomm/2012-04-24/Accounts/${accountId}/Recordings/${recordingId}.wav`;
    case 'jambonz':
      return `https://jambonz.example.net/v1/Accounts/${accountId}/RecentCalls/${recordingId}/record`;
  }
};

const buildCall = (index: number, provider: SimProvider, kind: ScenarioKind, accountId: string, startMs: number, r: Prng, maxTalk: number): SimCall => {
  const extra: Record<string, string> = {};
  const instance = `ID${r.hex(32)}`;
  if (provider === 'restcomm') extra.instanceId = instance;
  if (provider === 'jambonz') {
    extra.applicationSid = new Prng(accountId, 'app').uuid();
    extra.traceId = r.hex(32);
  }
  const b: Builder = { r, provider, instance, maxTalk, legs: [], dials: [] };
  const caller = phone(r);
  const number = phone(r);
  const rec = (leg: SimLeg, scope: SimRecording['scope'], atSec: number, durationSec: number | null): void => {
    const recordingId = recordingIdFor(provider, r);
    leg.recordings.push({ recordingId, scope, durationSec, atSec, url: recordingUrl(provider, accountId, recordingId) });
  };

  switch (kind) {
    case 'inbound-answered':
      inboundRoot(b, caller, number);
      break;
    case 'outbound-busy':
    case 'outbound-no-answer':
    case 'outbound-failed':
    case 'outbound-canceled': {
      const leg = baseLeg(b, null, 'outbound-api', number, caller, 0);
      unanswered(b, leg, kind.slice('outbound-'.length) as Exclude<LegOutcome, 'completed'>);
      b.legs.push(leg);
      break;
    }
    case 'call-blast': {
      const root = inboundRoot(b, caller, number);
      const start = root.answerSec! + r.int(1, 3);
      const k = r.int(2, 5);
      const children: SimLeg[] = [];
      for (let i = 0; i < k; i++) {
        const child = baseLeg(b, root.callId, 'outbound-dial', number, phone(r), start);
        if (r.chance(0.6)) answered(b, child);
        else unanswered(b, child, r.pick(['no-answer', 'busy', 'failed'] as const));
        children.push(child);
      }
      b.legs.push(...children);
      b.dials.push({ parentId: root.callId, childIds: children.map((c) => c.callId), mode: 'blast', startSec: start, endSec: Math.max(...children.map((c) => c.endSec)), winnerId: null });
      coverChildren(b, root);
      break;
    }
    case 'simring': {
      const root = inboundRoot(b, caller, number);
      dialSimring(b, root, r.int(2, 4), r.chance(0.8));
      coverChildren(b, root);
      break;
    }
    case 'sequential-dial': {
      const root = inboundRoot(b, caller, number);
      const k = r.int(2, 3);
      let at = root.answerSec! + r.int(1, 2);
      for (let i = 0; i < k; i++) {
        const last = i === k - 1;
        const outcome: LegOutcome = last && r.chance(0.7) ? 'completed' : r.pick(['no-answer', 'busy'] as const);
        const child = dialSingle(b, root, at, outcome);
        at = child.endSec + 1;
      }
      coverChildren(b, root);
      break;
    }
    case 'amd-machine':
    case 'amd-human': {
      const root = inboundRoot(b, caller, number);
      const child = dialSingle(b, root, root.answerSec! + r.int(1, 2), 'completed');
      const machine = kind === 'amd-machine';
      // A greeting is recognised a few seconds into the call; a machine call then ends quickly (message left).
      if (machine) {
        child.talkSec = Math.min(child.talkSec, r.int(8, 30));
        child.endSec = child.answerSec! + child.talkSec;
      }
      const atSec = child.answerSec! + Math.min(child.talkSec - 1, r.int(2, 4));
      child.amd = { result: machine ? 'machine' : 'human', atSec: Math.max(child.answerSec!, atSec), ...(provider === 'twilio' ? { asyncAmd: r.chance(0.5) } : {}) };
      b.dials.at(-1)!.endSec = child.endSec;
      coverChildren(b, root);
      break;
    }
    case 'recording-call': {
      if (provider === 'freeclimb') {
        const root = inboundRoot(b, caller, number);
        rec(root, 'call', root.endSec, Math.max(1, root.talkSec - r.int(0, 2)));
      } else {
        // Restcomm records only REST-created (outbound-api) legs (docs/providers.md, "Restcomm and Twilio quirks"); Twilio does the same in this model.
        const root = answered(b, baseLeg(b, null, 'outbound-api', number, caller, 0));
        b.legs.push(root);
        rec(root, 'call', root.endSec, root.talkSec);
      }
      break;
    }
    case 'recording-dial': {
      const root = inboundRoot(b, caller, number);
      const child = dialSingle(b, root, root.answerSec! + r.int(1, 2), 'completed');
      coverChildren(b, root);
      // <Dial record>: the URL rides on the parent's Dial action; Restcomm sends no duration there (docs/providers.md, "Restcomm and Twilio quirks").
      rec(root, 'dial', child.endSec, provider === 'twilio' ? child.talkSec : null);
      break;
    }
    case 'recording-utterance': {
      const root = inboundRoot(b, caller, number);
      const len = r.int(3, 25);
      root.endSec = Math.max(root.endSec, root.answerSec! + len + 3);
      root.talkSec = root.endSec - root.answerSec!;
      // Restcomm reports a <Record> length as a Java double ("8.42", docs/providers.md, "Restcomm and Twilio quirks"); the others in whole seconds.
      rec(root, 'utterance', root.answerSec! + len + 1, provider === 'restcomm' ? len + r.int(1, 99) / 100 : len);
      break;
    }
    case 'recording-conference':
    case 'conference': {
      const root = inboundRoot(b, caller, number);
      const name = `room-${r.hex(6)}`;
      const conferenceId = provider === 'freeclimb' ? `CF${r.hex(40)}` : provider === 'jambonz' ? `conf:${accountId}:${name}` : `CF${r.hex(32)}`;
      const joinSec = root.answerSec! + 1;
      root.endSec = Math.max(root.endSec, joinSec + 4);
      root.talkSec = root.endSec - root.answerSec!;
      root.conference = { conferenceId, name, joinSec, leaveSec: root.endSec };
      if (kind === 'recording-conference') rec(root, 'conference', root.endSec, root.endSec - joinSec);
      break;
    }
    case 'action-hooks-only': {
      // IVR first ("press 1"), then one dial; nothing but the hooks tells the ledger what happened.
      const root = inboundRoot(b, caller, number);
      root.gatherSec = root.answerSec! + 1;
      const outcome: LegOutcome = r.chance(0.7) ? 'completed' : r.pick(['no-answer', 'busy'] as const);
      dialSingle(b, root, root.gatherSec + r.int(1, 3), outcome);
      coverChildren(b, root);
      break;
    }
    case 'queue': {
      const root = inboundRoot(b, caller, number);
      const enterSec = root.answerSec! + 1;
      const leaveSec = enterSec + r.int(5, 150);
      const result = r.chance(0.7) ? 'bridged' : 'hangup';
      // Bridged: the agent talks, hangs up, and the app says goodbye; abandoned: the caller's hang-up ends the call.
      root.endSec = result === 'bridged' ? leaveSec + talkTime(r, maxTalk) + r.int(1, 3) : leaveSec;
      root.talkSec = root.endSec - root.answerSec!;
      root.queue = { queueId: `QU${r.hex(32)}`, enterSec, leaveSec, result, waitLoopSec: r.pick([20, 30, 45]) };
      break;
    }
    case 'rest-child': {
      const root = inboundRoot(b, caller, number);
      const child = answered(b, baseLeg(b, root.callId, 'outbound-api', number, phone(r), root.answerSec! + r.int(1, 3)));
      b.legs.push(child);
      coverChildren(b, root);
      break;
    }
  }
  return { index, provider, kind, accountId, startMs, legs: b.legs, dials: b.dials, extra, statusCallbacks: kind !== 'action-hooks-only' };
};
