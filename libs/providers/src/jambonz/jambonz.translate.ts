import { lookupTable } from '@lib/ledger';
import {
  newEvent,
  toNumber,
  unrecognized,
  type Direction,
  type LegParty,
  type MachineResult,
  type Outcome,
  type TranslatedEvent,
  type TranslationContext,
} from '@lib/ledger';
import type { z } from 'zod';
import { parseJsonObject, stringField } from '../shared/json-body.js';
import { stripUndefined } from '../shared/strip-undefined.js';
import {
  jambonzAmdSchema,
  jambonzCallHookSchema,
  jambonzCallInfoSchema,
  jambonzConferenceSchema,
  jambonzDialActionSchema,
  jambonzDtmfSchema,
  jambonzGatherSchema,
  type JambonzAmd,
  type JambonzCallHook,
  type JambonzCallInfo,
  type JambonzConference,
  type JambonzDialAction,
  type JambonzDtmf,
  type JambonzGather,
} from './jambonz.payloads.js';

export type JambonzHookKind = 'dial-action' | 'amd' | 'dtmf' | 'conference' | 'gather' | 'call-hook' | 'status';

const OUTCOMES = lookupTable<Outcome>({
  completed: 'completed',
  busy: 'busy',
  'no-answer': 'no-answer',
  failed: 'failed',
  canceled: 'canceled',
});

const AMD_RESULTS = lookupTable<MachineResult>({
  amd_human_detected: 'human',
  amd_machine_detected: 'machine',
  amd_machine_stopped_speaking: 'machine',
  amd_tone_detected: 'beep',
  amd_no_speech_detected: 'unknown',
  amd_decision_timeout: 'unknown',
});
const AMD_APP_HOOKS = new Set(['amd_error', 'amd_stopped']);

const GATHER_REASONS = new Set(['dtmfDetected', 'speechDetected', 'timeout', 'error', 'stt-low-confidence']);

/**
 * Our own sub-path naming (one path per hook, docs/providers.md, "jambonz quirks"). Only consulted when the payload fits more than one kind:
 * jambonz sends no message type over HTTP, so the body is the primary key and a misrouted URL must not win.
 */
const PATH_HINTS = lookupTable<JambonzHookKind>({
  status: 'status',
  'call-status': 'status',
  'dial-action': 'dial-action',
  dial: 'dial-action',
  amd: 'amd',
  dtmf: 'dtmf',
  'dial-dtmf': 'dtmf',
  conference: 'conference',
  'conference-status': 'conference',
  gather: 'gather',
  'call-hook': 'call-hook',
});

// Markers that name one hook unambiguously, in precedence order (docs/providers.md, "jambonz quirks").
const DECISIVE: ReadonlyArray<[JambonzHookKind, (o: Record<string, unknown>) => boolean]> = [
  ['dial-action', (o) => has(o, 'dial_call_status') || has(o, 'dial_status')],
  ['amd', (o) => typeof o.type === 'string' && o.type.startsWith('amd_')],
  ['dtmf', (o) => has(o, 'dtmf')],
  ['conference', (o) => has(o, 'event') && has(o, 'conference_sid')],
  ['gather', (o) => typeof o.reason === 'string' && GATHER_REASONS.has(o.reason)],
];
// Status and call_hook bodies are both plain CallInfo: the key sets differ only by convention (docs/providers.md, "jambonz quirks").
const WEAK: ReadonlyArray<[JambonzHookKind, (o: Record<string, unknown>) => boolean]> = [
  ['call-hook', (o) => (o.sip !== null && typeof o.sip === 'object') || has(o, 'local_sip_address') || has(o, 'caller_name')],
  ['status', (o) => has(o, 'call_status')],
];

const has = (o: Record<string, unknown>, key: string): boolean => o[key] !== undefined && o[key] !== null;

/** Which hook a body is: payload markers first, the sub-path only breaks ties between matching kinds. */
export const detectJambonzHookKind = (obj: Record<string, unknown>, path: string): JambonzHookKind | null => {
  const hint = pathHint(path);
  for (const group of [DECISIVE, WEAK]) {
    const matches = group.filter(([, test]) => test(obj)).map(([kind]) => kind);
    if (matches.length === 0) continue;
    return hint && matches.includes(hint) ? hint : matches[0]!;
  }
  return null;
};

const pathHint = (path: string): JambonzHookKind | undefined => {
  const last = path.replace(/[?#].*$/, '').split('/').filter(Boolean).at(-1);
  return last ? PATH_HINTS[last.toLowerCase()] : undefined;
};

/** jambonz webhook → neutral events (docs/providers.md, "What is read from each webhook kind"). Pure and total: bad input becomes UnrecognizedWebhook. */
export const translateJambonzWebhook = (rawBody: Buffer, ctx: TranslationContext): TranslatedEvent[] => {
  try {
    return translate(rawBody, ctx);
  } catch (err) {
    // Defence in depth only: the ledger must keep the raw request even if a branch below has a bug.
    return [unrecognized(`jambonz translator failed: ${(err as Error)?.message ?? String(err)}`)];
  }
};

const translate = (rawBody: Buffer, ctx: TranslationContext): TranslatedEvent[] => {
  const parsed = parseJsonObject(rawBody);
  if (!parsed.ok) return [unrecognized(parsed.reason)];
  const obj = parsed.value;
  const legHint = stringField(obj, 'call_sid');
  const accountHint = stringField(obj, 'account_sid');
  const kind = detectJambonzHookKind(obj, ctx.path ?? '');
  if (!kind) {
    return [unrecognized('not a known jambonz hook: no call_status, dial_call_status, type amd_*, dtmf, event+conference_sid or gather reason', legHint, accountHint)];
  }
  if (!legHint) return [unrecognized(`jambonz ${kind} webhook without call_sid`, null, accountHint)];

  const fail = (error: z.ZodError): TranslatedEvent[] => {
    const issue = error.issues[0];
    return [unrecognized(`payload does not match jambonz ${kind} hook: ${issue?.path.join('.') || 'body'}: ${issue?.message}`, legHint, accountHint)];
  };
  // Action, AMD, conference, gather and dtmf hooks carry the whole CallInfo of their leg (JZ-task `performAction`
  // / `performHook` serialise `cs.callInfo`), so the leg's own call_status rides along: apps without a status hook
  // must still see their legs answered and ended.
  switch (kind) {
    case 'dial-action': {
      const r = jambonzDialActionSchema.safeParse(obj);
      return r.success ? [...dialAction(r.data, legHint), ...legState(r.data, legHint)] : fail(r.error);
    }
    case 'amd': {
      const r = jambonzAmdSchema.safeParse(obj);
      return r.success ? [...amd(r.data, legHint), ...legState(r.data, legHint)] : fail(r.error);
    }
    case 'dtmf': {
      const r = jambonzDtmfSchema.safeParse(obj);
      return r.success ? [...dtmf(r.data, legHint), ...legState(r.data, legHint)] : fail(r.error);
    }
    case 'conference': {
      const r = jambonzConferenceSchema.safeParse(obj);
      return r.success ? [...conference(r.data, legHint), ...legState(r.data, legHint)] : fail(r.error);
    }
    case 'gather': {
      const r = jambonzGatherSchema.safeParse(obj);
      return r.success ? [...gather(r.data, legHint), ...legState(r.data, legHint)] : fail(r.error);
    }
    case 'call-hook': {
      const r = jambonzCallHookSchema.safeParse(obj);
      return r.success ? callHook(r.data, legHint) : fail(r.error);
    }
    case 'status': {
      const r = jambonzCallInfoSchema.safeParse(obj);
      return r.success ? status(r.data, legHint) : fail(r.error);
    }
  }
};

interface Envelope {
  accountId: string | null;
  parentLegId: string | null;
  party: LegParty;
}

const envelopeOf = (w: JambonzCallInfo): Envelope => {
  const parentLegId = w.parent_call_sid || null;
  // jambonz only says "outbound"; a parent_call_sid is what distinguishes a dial child from a REST call (docs/providers.md, "jambonz quirks").
  const direction: Direction | null =
    w.direction === 'inbound' ? 'inbound' : w.direction === 'outbound' ? (parentLegId ? 'outbound-dial' : 'outbound-api') : null;
  return { accountId: w.account_sid || null, parentLegId, party: { direction, from: w.from ?? null, to: w.to ?? null } };
};

const outcomeOf = (value: string | null | undefined): Outcome => (value ? OUTCOMES[value] : undefined) ?? 'unknown';

const callInitiated = (callSid: string, env: Envelope): TranslatedEvent =>
  newEvent('CallInitiated', callSid, { direction: env.party.direction, from: env.party.from, to: env.party.to }, env);

const status = (w: JambonzCallInfo, callSid: string): TranslatedEvent[] => {
  const env = envelopeOf(w);
  const sipStatus = toNumber(w.sip_status);
  switch (w.call_status) {
    case 'trying': {
      const events: TranslatedEvent[] = [callInitiated(callSid, env)];
      // The link is a fact about the parent (who it dialled), so it lives on the parent's stream.
      if (env.parentLegId) {
        events.push(newEvent('ChildLegDialed', env.parentLegId, { childLegId: callSid, parentLegId: env.parentLegId }, { accountId: env.accountId }));
      }
      return events;
    }
    case 'ringing':
    case 'early-media':
      return [newEvent('CallRinging', callSid, stripUndefined({ earlyMedia: w.call_status === 'early-media', sipStatus }), env)];
    case 'in-progress':
      return [newEvent('CallAnswered', callSid, stripUndefined({ sipStatus }), env)];
    case 'completed':
      return [
        newEvent(
          'CallCompleted',
          callSid,
          stripUndefined({
            outcome: 'completed' as const,
            durationSec: toNumber(w.duration),
            sipStatus,
            terminatedBy: w.call_termination_by || undefined,
          }),
          env,
        ),
      ];
    case 'failed':
    case 'busy':
    case 'no-answer': {
      // A 487 child is either a simring loser or a ring timeout (docs/providers.md, "jambonz quirks"); only the parent's dial_call_sid can
      // tell, so the translator states the neutral fact and projections decide "simring-loser".
      const endReason = env.parentLegId && w.call_status === 'no-answer' && sipStatus === 487 ? 'canceled-487' : undefined;
      return [
        newEvent(
          'CallCompleted',
          callSid,
          stripUndefined({ outcome: outcomeOf(w.call_status), endReason, sipStatus, terminatedBy: w.call_termination_by || undefined }),
          env,
        ),
      ];
    }
    case 'queued':
      return [newEvent('AppHook', callSid, { kind: 'queued' }, env)];
    default:
      return [unrecognized(`unsupported jambonz call_status "${w.call_status ?? ''}"`, callSid, env.accountId)];
  }
};

/** The state a hook's CallInfo reports for its own leg: what a status hook with the same CallInfo would say. */
const LEG_STATE_TYPES = new Set(['CallRinging', 'CallAnswered', 'CallCompleted']);
const legState = (w: JambonzCallInfo, callSid: string): TranslatedEvent[] => status(w, callSid).filter((e) => LEG_STATE_TYPES.has(e.type));

// session:new only proves the leg exists; its call_status must not advance state (docs/providers.md, "What is read from each webhook kind").
const callHook = (w: JambonzCallHook, callSid: string): TranslatedEvent[] => [callInitiated(callSid, envelopeOf(w))];

const dialAction = (w: JambonzDialAction, callSid: string): TranslatedEvent[] => {
  const env = envelopeOf(w);
  const child = w.dial_call_sid || undefined;
  const events: TranslatedEvent[] = [
    newEvent(
      'DialCompleted',
      callSid,
      stripUndefined({
        childLegId: child,
        outcome: outcomeOf(w.dial_call_status ?? w.dial_status),
        sipStatus: toNumber(w.dial_sip_status),
      }),
      env,
    ),
  ];
  if (child) events.push(newEvent('ChildLegDialed', callSid, { childLegId: child, parentLegId: callSid }, env));
  return events;
};

const amd = (w: JambonzAmd, callSid: string): TranslatedEvent[] => {
  const env = envelopeOf(w);
  if (AMD_APP_HOOKS.has(w.type)) return [newEvent('AppHook', callSid, { kind: w.type }, env)];
  const result = AMD_RESULTS[w.type];
  if (!result) return [unrecognized(`unsupported jambonz AMD type "${w.type}"`, callSid, env.accountId)];
  // no_speech and decision_timeout both map to "unknown": fall back to the type so the detail keeps them apart.
  const detail = [w.reason, w.greeting ?? w.hint].filter(Boolean).join(': ') || w.type;
  // legId stays the payload's (parent) call_sid: only projections know the dial winner to re-attach it to (docs/providers.md, "jambonz quirks").
  return [newEvent('MachineDetected', callSid, { result, detail }, env)];
};

const dtmf = (w: JambonzDtmf, callSid: string): TranslatedEvent[] => [
  newEvent('DtmfReceived', callSid, { digits: w.dtmf == null ? '' : String(w.dtmf), source: 'dial-capture' }, envelopeOf(w)),
];

const gather = (w: JambonzGather, callSid: string): TranslatedEvent[] => {
  const env = envelopeOf(w);
  if (w.reason === 'dtmfDetected') {
    return [newEvent('DtmfReceived', callSid, { digits: w.digits == null ? '' : String(w.digits), reason: w.reason, source: 'gather' }, env)];
  }
  if (w.reason === 'speechDetected') {
    const best = typeof w.speech === 'object' && w.speech ? w.speech.alternatives?.[0] : undefined;
    const text = typeof w.speech === 'string' ? w.speech : best?.transcript;
    if (text) return [newEvent('SpeechRecognized', callSid, stripUndefined({ text, confidence: toNumber(best?.confidence) }), env)];
    return [newEvent('AppHook', callSid, { kind: 'gather:speechDetected-without-transcript' }, env)];
  }
  return [newEvent('AppHook', callSid, { kind: `gather:${w.reason}` }, env)];
};

const conference = (w: JambonzConference, callSid: string): TranslatedEvent[] => {
  const env = { ...envelopeOf(w), occurredAt: isoOrNull(w.time) };
  const conferenceId = w.conference_sid;
  switch (w.event) {
    case 'join':
      return [newEvent('ConferenceJoined', callSid, stripUndefined({ conferenceId, members: toNumber(w.members) }), env)];
    case 'leave':
      return [newEvent('ConferenceLeft', callSid, stripUndefined({ conferenceId, members: toNumber(w.members) }), env)];
    case 'start':
    case 'end':
      return [newEvent('ConferenceStatusChanged', callSid, { conferenceId, status: w.event }, env)];
    case 'start-talking':
    case 'stop-talking':
      return [newEvent('AppHook', callSid, { kind: `conference:${w.event}` }, env)];
    default:
      return [unrecognized(`unsupported jambonz conference event "${w.event}"`, callSid, env.accountId)];
  }
};

/** occurredAt feeds ordering, so only a parseable time is trusted; the raw string stays in the stored body. */
const isoOrNull = (value: string | null | undefined): string | null => {
  if (!value) return null;
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? null : new Date(ms).toISOString();
};

