import { z } from 'zod';
import { describe, expect, it } from 'vitest';
import { CALL_EVENT_TYPES, type CallEventDataMap } from './call-leg.events.js';
import { EVENT_SCHEMAS, EventVersionError, eventDataProblems, eventParser, parseEvent, schemaVersionOf, type EventDataMap, type EventSchema } from './event-schemas.js';

/** One example of each type's data at version 1: every type is read at every version it has (only 1 today). */
const V1: { [K in keyof EventDataMap]: EventDataMap[K] } = {
  CallInitiated: { direction: 'inbound', from: '+1', to: null },
  CallRinging: { earlyMedia: true, sipStatus: 180 },
  CallAnswered: {},
  CallCompleted: { outcome: 'completed', durationSec: 12, endReason: 'hangup', endReasonDetail: '31000: x', sipStatus: 200, terminatedBy: 'caller' },
  ChildLegDialed: { childLegId: 'C', parentLegId: 'P' },
  DialCompleted: { childLegId: 'C', outcome: 'busy', durationSec: 0, ringDurationSec: 4, sipStatus: 486 },
  MachineDetected: { result: 'machine', detail: 'machine_end_beep', detectionMs: 2300 },
  RecordingAvailable: { recordingId: 'R', url: 'https://x/r.wav', durationSec: 3, scope: 'call', status: 'completed' },
  ConferenceJoined: { conferenceId: 'K', members: 2 },
  ConferenceLeft: { conferenceId: 'K' },
  ConferenceStatusChanged: { conferenceId: 'K', status: 'ended' },
  DtmfReceived: { digits: '12#', reason: 'finishOnKey', source: 'gather' },
  SpeechRecognized: { text: 'yes', confidence: 0.9 },
  QueueEntered: { queueId: 'Q', queueTimeSec: 5, result: 'queued' },
  QueueLeft: { queueId: 'Q', result: 'bridged' },
  AppHook: { kind: 'redirect' },
  UnrecognizedWebhook: { reason: 'no call id' },
  AppAnswered: {
    legId: 'A', answersReceiptId: '7', answersBodySha256: 'ab', method: 'POST', path: 'status', outcome: 'answered', status: 200,
    contentType: 'application/json', durationMs: 3.5, dialect: 'jambonz', parse: 'ok', parseError: null, instructions: ['dial'], redactions: [],
  },
  DialRequested: {
    legId: 'A', index: 0, verb: 'dial', targets: [{ type: 'phone', value: '+2' }], mode: 'single', ringTimeoutSec: 20, defaultRingTimeoutSec: 60,
    timeLimitSec: null, callerId: null, amd: { actionHook: '/amd' }, record: null, hooks: { action: '/dial' },
  },
  SubjectErased: {
    erasureId: 'E', subject: 'number', hint: '01', reason: 'caller request', keyName: 'admin', streams: ['callLeg-twilio:CA1'], events: 2, fields: 3, receipts: 1, notErasable: 0,
  },
  PersonalDataErased: { erasureId: 'E', positions: ['7'], fields: 2 },
};

describe('event schemas, version 1 of every type', () => {
  it('cover every call event type, the app-answer events and the erasure events', () => {
    expect(Object.keys(EVENT_SCHEMAS).sort()).toEqual([...CALL_EVENT_TYPES, 'AppAnswered', 'DialRequested', 'SubjectErased', 'PersonalDataErased'].sort());
    for (const type of Object.keys(EVENT_SCHEMAS)) expect(schemaVersionOf(type)).toBe(1);
  });

  it.each(Object.entries(V1))('%s version 1 is read as it was written and passes the write check', (type, data) => {
    expect(parseEvent(type, 1, data)).toEqual({ known: true, type, data, issues: null });
    expect(eventDataProblems(type, data)).toEqual([]);
  });

  it('keeps the keys a schema does not name (the numeric bounds list what they took out)', () => {
    const data = { outcome: 'busy', invalidFields: [{ field: 'sipStatus', value: '486.5', reason: 'not an integer' }] };
    expect(parseEvent('CallCompleted', 1, data).data).toEqual(data);
    expect(eventDataProblems('CallCompleted', data)).toEqual([]);
  });

  it('reads data that does not fit as stored, with the reasons, so the projection can still do what it can', () => {
    expect(parseEvent('CallCompleted', 1, null)).toEqual({ known: true, type: 'CallCompleted', data: {}, issues: ['outcome: Invalid option: expected one of "completed"|"busy"|"no-answer"|"failed"|"canceled"|"unanswered-unknown"|"unknown"'] });
    const odd = parseEvent('DialCompleted', 1, { childLegId: { not: 'text' }, outcome: 'busy' });
    expect(odd.data).toEqual({ childLegId: { not: 'text' }, outcome: 'busy' });
    expect(odd.issues).toEqual([expect.stringMatching(/^childLegId: /)]);
  });

  it('refuses at the write boundary what is missing, mistyped or unknown', () => {
    expect(eventDataProblems('RecordingAvailable', { scope: 'call' })).toEqual([expect.stringMatching(/^RecordingAvailable\.url: /)]);
    expect(eventDataProblems('CallAnswered', { sipStatus: '200' })).toEqual([expect.stringMatching(/^CallAnswered\.sipStatus: /)]);
    expect(eventDataProblems('CallAnswered', { sipstatus: 200 })).toEqual([expect.stringMatching(/sipstatus/)]);
    expect(eventDataProblems('CallTeleported', {})).toEqual(['unknown event type CallTeleported']);
  });

  it('passes an unknown type through untouched', () => {
    expect(parseEvent('SomethingLater', 3, { a: 1 })).toEqual({ known: false, type: 'SomethingLater', data: { a: 1 }, issues: null });
  });

  it('refuses a version this code does not know (newer, zero, fractional): never guessed at', () => {
    for (const v of [2, 0, -1, 1.5]) expect(() => parseEvent('CallAnswered', v, {})).toThrow(EventVersionError);
    expect(() => parseEvent('CallAnswered', 2, {})).toThrow(/CallAnswered version 2 is not readable here \(current: 1\)/);
  });
});

describe('upcasting (a type at version 3 with data written at versions 1 and 2)', () => {
  // Version 1: { durationSec }; version 2 renamed it { talkSec }; version 3 added { unit } with 's' for old data.
  const v3 = z.object({ talkSec: z.number(), unit: z.enum(['s', 'ms']) });
  const schemas: Record<string, EventSchema<unknown>> = {
    Talked: {
      version: 3,
      data: v3,
      upcasters: {
        1: ({ durationSec, ...rest }) => ({ ...rest, talkSec: durationSec }),
        2: (d) => ({ ...d, unit: 's' }),
      },
    },
    Gap: { version: 3, data: v3, upcasters: { 2: (d) => ({ ...d, unit: 's' }) } },
  };
  const parse = eventParser(schemas);

  it('version 1 goes through both upcasters', () => {
    expect(parse('Talked', 1, { durationSec: 12 })).toEqual({ known: true, type: 'Talked', data: { talkSec: 12, unit: 's' }, issues: null });
  });

  it('version 2 goes through the last one only', () => {
    expect(parse('Talked', 2, { talkSec: 12 })).toEqual({ known: true, type: 'Talked', data: { talkSec: 12, unit: 's' }, issues: null });
  });

  it('version 3 is read as it is', () => {
    expect(parse('Talked', 3, { talkSec: 12, unit: 'ms' })).toEqual({ known: true, type: 'Talked', data: { talkSec: 12, unit: 'ms' }, issues: null });
  });

  it('a version with no upcaster is an error, not a guess', () => {
    expect(() => parse('Gap', 1, { durationSec: 1 })).toThrow(/Gap has no upcaster from version 1/);
  });

  it('the upcast data is checked against the current version', () => {
    expect(parse('Talked', 1, { seconds: 12 }).issues).toEqual([expect.stringMatching(/^talkSec: /)]);
  });
});

// The derived types are the schemas' (a compile-time check: a field added to a schema appears here).
const _typed: CallEventDataMap['CallCompleted'] = { outcome: 'completed', terminatedBy: 'caller' };
void _typed;
