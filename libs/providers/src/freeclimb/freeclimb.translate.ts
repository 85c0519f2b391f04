import { lookupTable } from '@lib/ledger';
import {
  newEvent,
  toNumber,
  unrecognized,
  type Direction,
  type LegParty,
  type Outcome,
  type TranslatedEvent,
  type TranslationContext,
} from '@lib/ledger';
import { parseJsonObject, stringField } from '../shared/json-body.js';
import { freeclimbWebhookSchema, type FreeclimbWebhook } from './freeclimb.payloads.js';
import { stripUndefined } from '../shared/strip-undefined.js';

const OUTCOMES = lookupTable<Outcome>({
  completed: 'completed',
  busy: 'busy',
  noAnswer: 'no-answer',
  failed: 'failed',
  canceled: 'canceled',
});

// The docs disagree on REST-created calls ("outbound" vs "outboundAPI", docs/providers.md, "FreeClimb requests"): both mean outbound-api.
const DIRECTIONS = lookupTable<Direction>({
  inbound: 'inbound',
  outbound: 'outbound-api',
  outboundAPI: 'outbound-api',
  outboundDial: 'outbound-dial',
});

const MACHINE = lookupTable<'machine' | 'fax'>({ 'answering machine': 'machine', 'fax modem': 'fax' });

const APP_HOOKS = new Set(['redirect', 'queueWait']);

/** FreeClimb voice webhook → neutral events, dispatched on `requestType` (docs/providers.md, "What is read from each webhook kind"). */
export const translateFreeclimbWebhook = (rawBody: Buffer, _ctx: TranslationContext): TranslatedEvent[] => {
  const parsed = parseJsonObject(rawBody);
  if (!parsed.ok) return [unrecognized(parsed.reason)];
  const obj = parsed.value;
  const result = freeclimbWebhookSchema.safeParse(obj);
  const legHint = stringField(obj, 'callId');
  const accountHint = stringField(obj, 'accountId');
  if (!result.success) {
    const issue = result.error.issues[0];
    return [unrecognized(`payload does not match FreeClimb webhook: ${issue?.path.join('.') || 'body'}: ${issue?.message}`, legHint, accountHint)];
  }
  const events = translateParsed(result.data);
  return [...events, ...hookState(result.data, events)];
};

/**
 * Every FreeClimb webhook carries the leg's `callStatus` (FC-openapi common request fields), so an app that
 * receives only its action webhooks (getDigits, record, machineDetected...) still sees the leg answered or ended.
 * The webhooks that already translate the status (inboundCall, outDial*, callStatus) are left alone.
 */
const STATE_OWN = new Set(['inboundCall', 'outDialStart', 'outDialConnect', 'outDialApiConnect', 'callStatus']);
const hookState = (w: FreeclimbWebhook, events: readonly TranslatedEvent[]): TranslatedEvent[] => {
  if (STATE_OWN.has(w.requestType) || !w.callId || events.every((e) => e.type === 'UnrecognizedWebhook')) return [];
  const party: LegParty = { direction: (w.direction ? DIRECTIONS[w.direction] : undefined) ?? null, from: w.from ?? null, to: w.to ?? null };
  const env = { accountId: w.accountId ?? null, parentLegId: w.parentCallId ?? null, party };
  if (w.callStatus === 'inProgress') return [newEvent('CallAnswered', w.callId, {}, env)];
  if (w.callStatus === 'ringing') return [newEvent('CallRinging', w.callId, {}, env)];
  const outcome = w.callStatus ? OUTCOMES[w.callStatus] : undefined;
  return outcome ? [newEvent('CallCompleted', w.callId, { outcome }, env)] : [];
};

const translateParsed = (w: FreeclimbWebhook): TranslatedEvent[] => {
  const callId = w.callId ?? null;
  const accountId = w.accountId ?? null;
  if (!callId) return [unrecognized(`${w.requestType} webhook without callId`, null, accountId)];
  const parentLegId = w.parentCallId ?? null;
  const party: LegParty = {
    direction: (w.direction ? DIRECTIONS[w.direction] : undefined) ?? null,
    from: w.from ?? null,
    to: w.to ?? null,
  };
  const env = { accountId, parentLegId, party };
  const onLeg = { accountId, parentLegId };

  switch (w.requestType) {
    case 'inboundCall':
      return [
        newEvent('CallInitiated', callId, { direction: 'inbound', from: party.from, to: party.to }, { ...env, parentLegId: null }),
        newEvent('CallRinging', callId, {}, { ...env, parentLegId: null }),
      ];

    case 'outDialStart': {
      // callId is the parent here; the child is only named (dialCallId), its own state comes later.
      const child = w.dialCallId ?? null;
      if (!child) return [newEvent('AppHook', callId, { kind: 'outDialStart-without-dialCallId' }, env)];
      return [
        newEvent('ChildLegDialed', callId, { childLegId: child, parentLegId: callId }, env),
        newEvent(
          'CallInitiated',
          child,
          { direction: 'outbound-dial', from: null, to: null },
          { accountId, parentLegId: callId, party: { direction: 'outbound-dial', from: null, to: null } },
        ),
      ];
    }

    case 'outDialConnect':
    case 'outDialApiConnect': {
      // callStatus wins over the deprecated dialCallStatus when they disagree (docs/providers.md, "FreeClimb requests").
      const status = w.callStatus ?? w.dialCallStatus ?? null;
      const isApi = w.requestType === 'outDialApiConnect';
      const direction: Direction = isApi ? 'outbound-api' : 'outbound-dial';
      const legParty = { ...party, direction };
      const events: TranslatedEvent[] = [];
      if (isApi) events.push(newEvent('CallInitiated', callId, { direction, from: party.from, to: party.to }, { ...env, party: legParty }));
      if (parentLegId) events.push(newEvent('ChildLegDialed', parentLegId, { childLegId: callId, parentLegId }, { accountId }));
      if (status === 'inProgress') {
        events.push(newEvent('CallAnswered', callId, {}, { ...env, party: legParty }));
      } else if (status && OUTCOMES[status]) {
        const outcome = OUTCOMES[status];
        events.push(newEvent('CallCompleted', callId, { outcome }, { ...env, party: legParty }));
        if (!isApi && parentLegId) {
          events.push(newEvent('DialCompleted', parentLegId, { childLegId: callId, outcome }, { accountId }));
        }
      } else {
        events.push(newEvent('AppHook', callId, { kind: `${w.requestType}:${status ?? 'no-status'}` }, env));
      }
      return events;
    }

    case 'callStatus': {
      const outcome = w.callStatus ? OUTCOMES[w.callStatus] : undefined;
      if (!outcome) {
        // A non-final status in a status callback carries no terminal meaning; keep it visible as a hook.
        return [newEvent('AppHook', callId, { kind: `callStatus:${w.callStatus ?? 'none'}` }, env)];
      }
      const events: TranslatedEvent[] = [
        newEvent(
          'CallCompleted',
          callId,
          stripUndefined({ outcome, durationSec: toNumber(w.callDuration), endReason: w.callEndedReason ?? undefined }),
          env,
        ),
      ];
      // A hang-up right after StartRecordCall leaves "empty/zero information for the recording" (docs/providers.md, "FreeClimb quirks").
      if (w.recordingUrl) {
        events.push(
          newEvent(
            'RecordingAvailable',
            callId,
            stripUndefined({
              recordingId: w.recordingId ?? undefined,
              url: w.recordingUrl,
              durationSec: toNumber(w.recordingDurationSec),
              scope: 'call' as const,
            }),
            onLeg,
          ),
        );
      }
      return events;
    }

    case 'machineDetected': {
      const result = (w.machineType ? MACHINE[w.machineType] : undefined) ?? 'unknown';
      return [newEvent('MachineDetected', callId, stripUndefined({ result, detail: w.machineType ?? undefined }), env)];
    }

    case 'record':
      if (!w.recordingUrl) return [newEvent('AppHook', callId, { kind: 'record-without-recording' }, env)];
      // The RecordUtterance webhook names the leg's own from/to/direction (FC-openapi `RecordWebhook`): keep them.
      return [
        newEvent(
          'RecordingAvailable',
          callId,
          stripUndefined({
            recordingId: w.recordingId ?? undefined,
            url: w.recordingUrl,
            durationSec: toNumber(w.recordingDurationSec),
            scope: 'utterance' as const,
          }),
          env,
        ),
      ];

    case 'transcribe': {
      const events: TranslatedEvent[] = [];
      if (w.recordingUrl) {
        const ms = toNumber(w.recordingDurationMs);
        events.push(
          newEvent(
            'RecordingAvailable',
            callId,
            stripUndefined({
              recordingId: w.recordingId ?? undefined,
              url: w.recordingUrl,
              durationSec: ms === undefined ? undefined : ms / 1000,
              scope: 'utterance' as const,
            }),
            onLeg,
          ),
        );
      }
      if (w.transcript) events.push(newEvent('SpeechRecognized', callId, { text: w.transcript }, onLeg));
      return events.length ? events : [newEvent('AppHook', callId, { kind: 'transcribe-empty' }, env)];
    }

    case 'getDigits':
      return [newEvent('DtmfReceived', callId, stripUndefined({ digits: w.digits ?? '', reason: w.reason ?? undefined, source: 'gather' as const }), env)];

    case 'getSpeech':
      if (w.reason === 'recognition' && w.recognitionResult) {
        return [newEvent('SpeechRecognized', callId, stripUndefined({ text: w.recognitionResult, confidence: toNumber(w.confidence) }), env)];
      }
      return [newEvent('AppHook', callId, { kind: `getSpeech:${w.reason ?? 'none'}` }, env)];

    case 'callControl':
      return [newEvent('DtmfReceived', callId, { digits: w.digits ?? '', source: 'call-control' }, env)];

    case 'addToConferenceNotification':
    case 'leaveConference': {
      if (!w.conferenceId) return [unrecognized(`${w.requestType} without conferenceId`, callId, accountId)];
      const type = w.requestType === 'leaveConference' ? 'ConferenceLeft' : 'ConferenceJoined';
      return [newEvent(type, callId, { conferenceId: w.conferenceId }, env)];
    }

    case 'createConference':
    case 'conferenceStatus':
    case 'conferenceRecordingStatus': {
      if (!w.conferenceId) return [unrecognized(`${w.requestType} without conferenceId`, callId, accountId)];
      const events: TranslatedEvent[] = [];
      if (w.requestType !== 'conferenceRecordingStatus') {
        events.push(newEvent('ConferenceStatusChanged', callId, { conferenceId: w.conferenceId, status: w.status ?? 'unknown' }, env));
      }
      if (w.recordingUrl) {
        events.push(
          newEvent(
            'RecordingAvailable',
            callId,
            stripUndefined({
              recordingId: w.recordingId ?? undefined,
              url: w.recordingUrl,
              durationSec: toNumber(w.recordingDurationSec),
              scope: 'conference' as const,
              status: w.status ?? undefined,
            }),
            onLeg,
          ),
        );
      }
      return events.length ? events : [newEvent('AppHook', callId, { kind: `${w.requestType}:no-recording` }, env)];
    }

    case 'addToQueueNotification':
      return [newEvent('QueueEntered', callId, stripUndefined({ queueId: w.queueId ?? '', queueTimeSec: toNumber(w.queueTime) }), env)];

    case 'dequeue':
    case 'removeFromQueueNotification':
      return [
        newEvent(
          'QueueLeft',
          callId,
          stripUndefined({ queueId: w.queueId ?? '', queueTimeSec: toNumber(w.queueTime), result: w.queueResult ?? undefined }),
          env,
        ),
      ];

    default:
      if (APP_HOOKS.has(w.requestType)) return [newEvent('AppHook', callId, { kind: w.requestType }, env)];
      return [unrecognized(`unsupported FreeClimb requestType "${w.requestType}"`, callId, accountId)];
  }
};

