import { lookupTable } from '@lib/ledger';
import {
  newEvent,
  presentString,
  toNumber,
  unrecognized,
  type Direction,
  type LegParty,
  type MachineResult,
  type Outcome,
  type Provider,
  type RecordingScope,
  type TranslatedEvent,
  type TranslationContext,
} from '@lib/ledger';
import { formBodyFromQuery, parseFormBody, type RcmlWebhook } from './rcml.payloads.js';
import { parseRcmlTimestamp } from './rcml.timestamp.js';
import { stripUndefined } from '../shared/strip-undefined.js';

/** Callback families of docs/providers.md, "Restcomm and Twilio requests" ('recording-status' is Twilio's recordingStatusCallback). */
export type RcmlFamily =
  | 'call-progress'
  | 'dial-action'
  | 'recording-status'
  | 'record-action'
  | 'gather-action'
  | 'voice-request'
  | 'amd-status'
  | 'conference-status'
  | 'enqueue-action'
  | 'queue-wait';

// Outcome map of docs/providers.md, "What is read from each webhook kind"; anything not listed (literal "null", '', in-progress, wait-for-answer) is unknown.
const OUTCOMES = lookupTable<Outcome>({
  completed: 'completed',
  busy: 'busy',
  'no-answer': 'no-answer',
  failed: 'failed',
  'not-found': 'failed',
  canceled: 'canceled',
});
const outcomeOf = (status: string | undefined): Outcome => (status !== undefined && OUTCOMES[status]) || 'unknown';

const DIRECTIONS = lookupTable<Direction>({
  inbound: 'inbound',
  'outbound-api': 'outbound-api',
  'outbound-dial': 'outbound-dial',
});

// Twilio RecordingSource values; the API-started conference recording is still a conference recording.
const RECORDING_SCOPES = lookupTable<RecordingScope>({
  DialVerb: 'dial',
  RecordVerb: 'utterance',
  Conference: 'conference',
  StartConferenceRecordingAPI: 'conference',
});

const RECORDING_SID = /^RE[0-9a-f]{32}$/i;

/**
 * Twilio `AnsweredBy` (https://www.twilio.com/docs/voice/answering-machine-detection#webhook-parameters), sent on
 * the voice URL request (synchronous AMD), on status callbacks, and alone to `AsyncAmdStatusCallback`. The
 * provider's own value is kept as the detail.
 */
const ANSWERED_BY = lookupTable<MachineResult>({
  human: 'human',
  machine_start: 'machine',
  machine_end_beep: 'beep',
  machine_end_silence: 'machine',
  machine_end_other: 'machine',
  fax: 'fax',
  unknown: 'unknown',
});

type Envelope = {
  accountId: string | null;
  parentLegId: string | null;
  occurredAt: string | null;
  providerSeq: number | null;
  party: LegParty;
  provider: Provider;
  /** Restcomm `CallTimestamp`: the call's creation time (RC-vi `parameters()`), on every request but family C. */
  createdAt: string | null;
};

/**
 * Restcomm's `<Record>` action has no RecordingSid (docs/providers.md, "Restcomm and Twilio quirks"), but its URL ends in `RE<32 hex>.wav`; taking the id
 * from there lets the same recording reported twice (record action, later API listing) collapse to one.
 */
export const recordingIdOf = (sid: string | undefined, url: string | undefined): string | undefined => {
  const explicit = presentString(sid);
  if (explicit) return explicit;
  if (!url) return undefined;
  const path = url.split(/[?#]/, 1)[0] ?? '';
  const last = path.slice(path.lastIndexOf('/') + 1);
  const stem = last.includes('.') ? last.slice(0, last.indexOf('.')) : last;
  return RECORDING_SID.test(stem) ? stem : undefined;
};

const has = (w: RcmlWebhook, key: string): boolean => Object.prototype.hasOwnProperty.call(w, key);

/**
 * Which callback produced this body, from the payload (docs/providers.md, "Restcomm and Twilio requests"). The sub-path is consulted only where the
 * payload is genuinely ambiguous: a record action that lost its RecordingDuration, a gather action with no input.
 */
export const detectRcmlFamily = (w: RcmlWebhook, path: string): RcmlFamily | null => {
  // Twilio conference statusCallback: ConferenceSid + StatusCallbackEvent (participant-join, conference-end...).
  // An empty ConferenceSid names no conference: such a body is read as the other kinds it may be.
  if (presentString(w.ConferenceSid) !== undefined && has(w, 'StatusCallbackEvent')) return 'conference-status';
  if (w.CallbackSource === 'call-progress-events') return 'call-progress';
  if (has(w, 'DialCallStatus')) return 'dial-action';
  // Before record-action: Twilio's recording status callback also carries RecordingDuration.
  if (has(w, 'RecordingStatus')) return 'recording-status';
  if (has(w, 'RecordingDuration')) return 'record-action';
  if (has(w, 'Digits') || has(w, 'SpeechResult')) return 'gather-action';
  if (/record/i.test(path) && presentString(w.RecordingUrl)) return 'record-action';
  if (/gather/i.test(path)) return 'gather-action';
  // <Enqueue action>: QueueResult, QueueSid, QueueTime (https://www.twilio.com/docs/voice/twiml/enqueue#attributes-action).
  if (has(w, 'QueueResult')) return 'enqueue-action';
  // <Enqueue waitUrl>: QueuePosition, QueueSid, QueueTime, AvgQueueTime, CurrentQueueSize.
  if (has(w, 'QueueSid') && has(w, 'QueuePosition')) return 'queue-wait';
  // AsyncAmdStatusCallback carries CallSid, AccountSid, AnsweredBy, MachineDetectionDuration and no CallStatus.
  if (has(w, 'AnsweredBy') && !has(w, 'CallStatus')) return 'amd-status';
  if (has(w, 'CallStatus')) return 'voice-request';
  return null;
};

/**
 * Restcomm / Twilio-compatible form webhook -> neutral events (docs/providers.md, "What is read from each webhook kind"). Pure; never throws:
 * anything it cannot place becomes UnrecognizedWebhook with the reason, the raw request is kept elsewhere.
 */
export const translateRcmlWebhook = (rawBody: Buffer, ctx: TranslationContext): TranslatedEvent[] => {
  try {
    return translate(rawBody, ctx);
  } catch (err) {
    // Defence in depth: a translator bug must not turn into a 500 that makes a provider drop the callback.
    return [unrecognized(`translator error: ${err instanceof Error ? err.message : String(err)}`)];
  }
};

const translate = (rawBody: Buffer, ctx: TranslationContext): TranslatedEvent[] => {
  let fields: Record<string, string>;
  if (rawBody.length === 0) {
    // Restcomm GET callbacks put every parameter in the query string (docs/providers.md, "Restcomm and Twilio requests"); a POST with nothing is just empty.
    if (!ctx.query.has('CallSid')) return [unrecognized('empty body')];
    fields = formBodyFromQuery(ctx.query).fields;
  } else {
    const parsed = parseFormBody(rawBody);
    if (!parsed.ok) return [unrecognized(parsed.reason)];
    fields = parsed.fields;
  }

  // The schema declares every parameter an optional string, and a form's fields are all strings: parsing them
  // could not fail nor change a value the translator reads (rcml.payloads.spec.ts checks the schema keeps that
  // shape), so the fields are read as they are, without a copy through zod on every delivery.
  const w: RcmlWebhook = fields;
  const accountId = presentString(w.AccountSid) ?? null;
  const callSid = presentString(w.CallSid) ?? presentString(w.CallSidEndingConference);
  if (!callSid) return [unrecognized('no CallSid in form body', null, accountId)];

  const family = detectRcmlFamily(w, ctx.path);
  if (!family) return [unrecognized('unknown RCML callback family (no CallStatus, CallbackSource, Dial*, Recording*, Digits)', callSid, accountId)];

  const party: LegParty = {
    direction: DIRECTIONS[w.Direction ?? ''] ?? null,
    from: presentString(w.From) ?? null,
    to: presentString(w.To) ?? null,
  };
  const env: Envelope = {
    accountId,
    parentLegId: presentString(w.ParentCallSid) ?? null,
    occurredAt: parseRcmlTimestamp(w.Timestamp),
    providerSeq: toNumber(w.SequenceNumber) ?? null,
    party,
    provider: ctx.provider,
    createdAt: parseRcmlTimestamp(w.CallTimestamp),
  };

  const events = ((): TranslatedEvent[] => {
    switch (family) {
      case 'call-progress':
        return callProgress(w, callSid, env);
      case 'dial-action':
        return dialAction(w, callSid, env);
      case 'recording-status':
        return recordingStatus(w, callSid, env);
      case 'record-action':
        return [...recordAction(w, callSid, env), ...legState(w, callSid, env, 'completed')];
      case 'gather-action':
        return [...gatherAction(w, callSid, env), ...legState(w, callSid, env, 'completed')];
      case 'voice-request':
        return voiceRequest(w, callSid, env, /status/i.test(ctx.path));
      case 'amd-status':
        // An AMD callback whose AnsweredBy is empty ("AnsweredBy=") says nothing: kept, not read as a result.
        return [machineDetected(w, callSid, env) ?? unrecognized('AMD status callback with an empty AnsweredBy', callSid, env.accountId)];
      case 'conference-status':
        return conferenceStatus(w, callSid, env);
      case 'enqueue-action':
        return [
          newEvent('QueueLeft', callSid, stripUndefined({ queueId: presentString(w.QueueSid) ?? '', queueTimeSec: toNumber(w.QueueTime), result: presentString(w.QueueResult) }), env),
          ...legState(w, callSid, env, 'completed'),
        ];
      case 'queue-wait':
        return [newEvent('QueueEntered', callSid, stripUndefined({ queueId: presentString(w.QueueSid) ?? '', queueTimeSec: toNumber(w.QueueTime) }), env)];
    }
  })();
  const amd = family === 'amd-status' ? null : machineDetected(w, callSid, env);
  if (amd) events.push(amd);
  return withCreationTime(events, callSid, env);
};

const machineDetected = (w: RcmlWebhook, callSid: string, env: Envelope): TranslatedEvent | null => {
  const value = presentString(w.AnsweredBy);
  if (!value) return null;
  return newEvent('MachineDetected', callSid, stripUndefined({ result: ANSWERED_BY[value] ?? 'unknown', detail: value, detectionMs: toNumber(w.MachineDetectionDuration) }), env);
};

/**
 * CallTimestamp is when the call was created, which is exactly what CallInitiated means: the leg's own
 * CallInitiated carries it as its provider time, and a request that has no CallInitiated gets one, so a
 * backfilled call starts at its own creation time however late its callbacks were imported.
 */
const withCreationTime = (events: TranslatedEvent[], callSid: string, env: Envelope): TranslatedEvent[] => {
  if (!env.createdAt || events.every((e) => e.type === 'UnrecognizedWebhook')) return events;
  let found = false;
  const out = events.map((e) => {
    if (e.type !== 'CallInitiated' || e.legId !== callSid) return e;
    found = true;
    return { ...e, occurredAt: env.createdAt };
  });
  if (!found) out.push(newEvent('CallInitiated', callSid, { direction: env.party.direction, from: env.party.from, to: env.party.to }, { ...env, occurredAt: env.createdAt }));
  return out;
};

/** Twilio ErrorCode / ErrorMessage: why the call failed, kept as the end reason's detail. */
const errorDetailOf = (w: RcmlWebhook): string | undefined => {
  const code = presentString(w.ErrorCode);
  const message = presentString(w.ErrorMessage);
  return code && message ? `${code}: ${message}` : (code ?? message);
};

/**
 * `completed` per dialect. Twilio: "the call was answered and has ended normally"
 * (https://www.twilio.com/docs/voice/api/call-resource#call-status-values); unanswered calls end busy, no-answer,
 * failed or canceled. Restcomm ends unanswered legs with `completed` too (RC-call `CallbackState`, RC-test
 * testDialStatusCallbackAliceUnavailable), so there only a positive answer->end duration proves an answer.
 */
const completedOutcome = (env: Envelope, durationSec: number | undefined): Outcome =>
  env.provider === 'twilio' || (durationSec !== undefined && durationSec > 0) ? 'completed' : 'unanswered-unknown';

/**
 * The leg's own CallStatus in an action hook (<Dial>, <Gather>, <Record>, <Enqueue> action): status callbacks are
 * optional, and an app that only receives action hooks must still see its legs reach the state they report.
 * `restcommCompleted` is what a Restcomm `completed` without a positive CallDuration means in that hook: answered
 * after a <Gather>, <Record> or <Enqueue> (they need media), after a <Dial> only if the dial was bridged.
 */
const legState = (w: RcmlWebhook, callSid: string, env: Envelope, restcommCompleted: Outcome): TranslatedEvent[] => {
  const status = presentString(w.CallStatus);
  switch (status) {
    case 'ringing':
      return [newEvent('CallRinging', callSid, {}, env)];
    case 'in-progress':
    case 'answered':
      return [newEvent('CallAnswered', callSid, {}, env)];
    case 'completed': {
      const durationSec = toNumber(w.CallDuration);
      const outcome = env.provider === 'twilio' ? 'completed' : durationSec !== undefined && durationSec > 0 ? 'completed' : restcommCompleted;
      return [newEvent('CallCompleted', callSid, stripUndefined({ outcome, durationSec, endReasonDetail: errorDetailOf(w) }), env)];
    }
    case 'busy':
    case 'no-answer':
    case 'failed':
    case 'not-found':
    case 'canceled':
      return [newEvent('CallCompleted', callSid, stripUndefined({ outcome: outcomeOf(status), durationSec: toNumber(w.CallDuration), endReasonDetail: errorDetailOf(w) }), env)];
    default:
      return [];
  }
};

/**
 * Twilio conference statusCallback (https://www.twilio.com/docs/voice/api/conference-resource#conference-status-callback):
 * participant events name the participant's CallSid; conference-end names CallSidEndingConference.
 */
const conferenceStatus = (w: RcmlWebhook, callSid: string, env: Envelope): TranslatedEvent[] => {
  const conferenceId = presentString(w.ConferenceSid)!;
  const event = presentString(w.StatusCallbackEvent) ?? '';
  switch (event) {
    case 'participant-join':
      return [newEvent('ConferenceJoined', callSid, { conferenceId }, env)];
    case 'participant-leave':
      return [newEvent('ConferenceLeft', callSid, { conferenceId }, env)];
    case 'conference-start':
    case 'conference-end':
      return [newEvent('ConferenceStatusChanged', callSid, { conferenceId, status: event.slice('conference-'.length) }, env)];
    default:
      return [newEvent('AppHook', callSid, { kind: `conference:${event}` }, env)];
  }
};

const initiated = (callSid: string, env: Envelope): TranslatedEvent =>
  newEvent('CallInitiated', callSid, { direction: env.party.direction, from: env.party.from, to: env.party.to }, env);

const recordingUrlOf = (w: RcmlWebhook): string | undefined => presentString(w.RecordingUrl) ?? presentString(w.PublicRecordingUrl);

/** The recording a callback announces, when it carries a URL; `scope` says which verb recorded it. */
const recordingOf = (w: RcmlWebhook, callSid: string, scope: RecordingScope, env: Envelope, status?: string): TranslatedEvent | null => {
  const url = recordingUrlOf(w);
  if (!url) return null;
  return newEvent(
    'RecordingAvailable',
    callSid,
    stripUndefined({ recordingId: recordingIdOf(w.RecordingSid, url), url, durationSec: toNumber(w.RecordingDuration), scope, status }),
    env,
  );
};

const callProgress = (w: RcmlWebhook, callSid: string, env: Envelope): TranslatedEvent[] => {
  const status = presentString(w.CallStatus);
  switch (status) {
    case 'initiated': {
      const events = [initiated(callSid, env)];
      const parent = env.parentLegId;
      // The link is about the parent; this callback's SequenceNumber orders the child, so it stays behind.
      if (parent) {
        events.push(newEvent('ChildLegDialed', parent, { childLegId: callSid, parentLegId: parent }, { accountId: env.accountId, occurredAt: env.occurredAt }));
      }
      return events;
    }
    case 'ringing':
      return [newEvent('CallRinging', callSid, {}, env)];
    case 'answered':
    case 'in-progress':
      return [newEvent('CallAnswered', callSid, stripUndefined({ sipStatus: toNumber(w.SipResponseCode) }), env)];
    case 'completed': {
      const durationSec = toNumber(w.CallDuration);
      // Restcomm ends unanswered legs with `completed` too (docs/providers.md, "Restcomm and Twilio quirks") and this translator is stateless, so only a
      // positive answer->end duration proves an answer; the ledger upgrades the outcome if it saw `answered`.
      const outcome = completedOutcome(env, durationSec);
      const events: TranslatedEvent[] = [
        newEvent('CallCompleted', callSid, stripUndefined({ outcome, durationSec, sipStatus: toNumber(w.SipResponseCode), endReasonDetail: errorDetailOf(w) }), env),
      ];
      const recording = recordingOf(w, callSid, 'call', env);
      if (recording) events.push(recording);
      return events;
    }
    case 'busy':
    case 'no-answer':
    case 'failed':
    case 'canceled':
      return [
        newEvent(
          'CallCompleted',
          callSid,
          stripUndefined({
            outcome: outcomeOf(status),
            durationSec: toNumber(w.CallDuration),
            sipStatus: toNumber(w.SipResponseCode),
            endReasonDetail: errorDetailOf(w),
          }),
          env,
        ),
      ];
    case 'queued':
      return [newEvent('AppHook', callSid, { kind: 'call-progress:queued' }, env)];
    default:
      return [unrecognized(`call-progress callback with unknown CallStatus "${w.CallStatus ?? ''}"`, callSid, env.accountId)];
  }
};

const dialAction = (w: RcmlWebhook, callSid: string, env: Envelope): TranslatedEvent[] => {
  const childLegId = presentString(w.DialCallSid);
  const events: TranslatedEvent[] = [
    newEvent(
      'DialCompleted',
      callSid,
      stripUndefined({
        childLegId,
        outcome: outcomeOf(presentString(w.DialCallStatus)),
        durationSec: toNumber(w.DialCallDuration),
        ringDurationSec: toNumber(w.DialRingDuration),
        sipStatus: toNumber(w.DialSipResponseCode),
      }),
      env,
    ),
  ];
  if (childLegId) events.push(newEvent('ChildLegDialed', callSid, { childLegId, parentLegId: callSid }, env));
  // CallStatus here is the calling leg's own (RC-vi `parameters()`; Twilio's Dial action sends it too). A bridged
  // dial proves the caller was answered even on Restcomm, whose `completed` alone does not.
  events.push(...legState(w, callSid, env, outcomeOf(presentString(w.DialCallStatus)) === 'completed' ? 'completed' : 'unanswered-unknown'));
  // `<Dial record>` reports the URL before the file may exist (docs/providers.md, "Restcomm and Twilio quirks"); it is still the only announcement we get.
  const recording = recordingOf(w, callSid, 'dial', env);
  if (recording) events.push(recording);
  return events;
};

const recordingStatus = (w: RcmlWebhook, callSid: string, env: Envelope): TranslatedEvent[] => {
  const status = presentString(w.RecordingStatus);
  const url = recordingUrlOf(w);
  if (status !== 'completed' || !url) {
    return [newEvent('AppHook', callSid, { kind: `recording-status:${status ?? 'none'}${status === 'completed' ? '-without-url' : ''}` }, env)];
  }
  const scope = RECORDING_SCOPES[w.RecordingSource ?? ''] ?? 'call';
  return [
    newEvent(
      'RecordingAvailable',
      callSid,
      stripUndefined({ recordingId: recordingIdOf(w.RecordingSid, url), url, durationSec: toNumber(w.RecordingDuration), scope, status }),
      env,
    ),
  ];
};

const recordAction = (w: RcmlWebhook, callSid: string, env: Envelope): TranslatedEvent[] => {
  const events: TranslatedEvent[] = [];
  const recording = recordingOf(w, callSid, 'utterance', env);
  if (recording) events.push(recording);
  const digits = presentString(w.Digits);
  // Restcomm writes the literal `hangup` in Digits when the caller hung up to end the recording (docs/providers.md, "Restcomm and Twilio quirks").
  if (digits && digits !== 'hangup') events.push(newEvent('DtmfReceived', callSid, { digits, source: 'gather' }, env));
  return events.length ? events : [newEvent('AppHook', callSid, { kind: 'record-action:empty' }, env)];
};

const gatherAction = (w: RcmlWebhook, callSid: string, env: Envelope): TranslatedEvent[] => {
  const events: TranslatedEvent[] = [];
  const digits = presentString(w.Digits);
  if (digits) events.push(newEvent('DtmfReceived', callSid, { digits, source: 'gather' }, env));
  const text = presentString(w.SpeechResult);
  if (text) events.push(newEvent('SpeechRecognized', callSid, stripUndefined({ text, confidence: toNumber(w.Confidence) }), env));
  return events.length ? events : [newEvent('AppHook', callSid, { kind: 'gather-action:empty' }, env)];
};

/**
 * Families A and B carry the same parameters (docs/providers.md, "Restcomm and Twilio requests"); the sub-path only names the hook kind. The translator
 * cannot know "first seen", so an inbound leg re-asserts CallInitiated on every non-final request: the ledger
 * treats it as idempotent, and it is what creates the leg when the first request was missed.
 */
const voiceRequest = (w: RcmlWebhook, callSid: string, env: Envelope, statusHint: boolean): TranslatedEvent[] => {
  const status = presentString(w.CallStatus);
  const inbound = env.party.direction === 'inbound';
  const kind = statusHint ? 'number-status' : 'voice-request';
  switch (status) {
    case 'completed':
    case 'busy':
    case 'failed':
    case 'not-found':
    case 'no-answer':
    case 'canceled':
      return [
        newEvent('CallCompleted', callSid, stripUndefined({ outcome: outcomeOf(status), durationSec: toNumber(w.CallDuration), endReasonDetail: errorDetailOf(w) }), env),
      ];
    case 'ringing':
      return [...(inbound ? [initiated(callSid, env)] : []), newEvent('CallRinging', callSid, {}, env)];
    case 'in-progress':
      return [...(inbound ? [initiated(callSid, env)] : []), newEvent('CallAnswered', callSid, {}, env)];
    case 'queued':
    case 'initiated':
      return [initiated(callSid, env)];
    case 'wait-for-answer':
      return inbound ? [initiated(callSid, env)] : [newEvent('AppHook', callSid, { kind: `${kind}:wait-for-answer` }, env)];
    default:
      return [unrecognized(`${kind} with unknown CallStatus "${w.CallStatus ?? ''}"`, callSid, env.accountId)];
  }
};
