import { describe, expect, it } from 'vitest';
import type { TranslatedEvent, TranslationContext } from '@lib/ledger';
import { translateFreeclimbWebhook } from './freeclimb.translate.js';

const ctx: TranslationContext = { provider: 'freeclimb', path: '', query: new URLSearchParams(), contentType: 'application/json' };
const ACC = 'ACe511f7e60a7aaec1435ac251c24f6bd698d8dd14';
const PARENT = 'CA2cfc4d1f2e9feccb2ec7e2fe68f903d31faca038';
const CHILD = 'CAb53f471b12555eb49d7c94a2ec8543dcc8ae8597';
const API_LEG = 'CAdce265b9f1ce276a6ac60e927d64df086793bfd7';
const CONF = 'CF777762281c323fe86cefd7f383fc7fe53070a02a';
const REC = 'RE0f823d693a2bc8577d45265e4d05c244a3769dfc';
const recUrl = `https://www.freeclimb.com/apiserver/Accounts/${ACC}/Recordings/${REC}/Download`;

const base = { accountId: ACC, conferenceId: null, queueId: null };
const inboundLeg = { ...base, callId: PARENT, parentCallId: null, from: '+13125550147', to: '+13125550100', direction: 'inbound' };
const childLeg = { ...base, callId: CHILD, parentCallId: PARENT, from: '+13125550100', to: '+18475550163', direction: 'outboundDial' };

const run = (payload: unknown): TranslatedEvent[] => translateFreeclimbWebhook(Buffer.from(JSON.stringify(payload)), ctx);
const shape = (events: TranslatedEvent[]) => events.map((e) => ({ type: e.type, legId: e.legId, data: e.data }));
/** The webhook's own events, without the leg state its callStatus also reports (tested on its own below). */
const hookRun = (payload: unknown): TranslatedEvent[] =>
  run(payload).filter((e) => !['CallRinging', 'CallAnswered', 'CallCompleted'].includes(e.type));

describe('translateFreeclimbWebhook (docs/providers.md, "What is read from each webhook kind")', () => {
  it('inboundCall → CallInitiated(inbound) + CallRinging on the root leg', () => {
    const events = run({ ...inboundLeg, callStatus: 'ringing', requestType: 'inboundCall' });
    expect(shape(events)).toEqual([
      { type: 'CallInitiated', legId: PARENT, data: { direction: 'inbound', from: '+13125550147', to: '+13125550100' } },
      { type: 'CallRinging', legId: PARENT, data: {} },
    ]);
    expect(events[0]!.accountId).toBe(ACC);
    expect(events[0]!.parentLegId).toBeNull();
  });

  it('outDialStart → ChildLegDialed on the parent + CallInitiated(outbound-dial) on the child', () => {
    const events = run({ requestType: 'outDialStart', ...inboundLeg, dialCallId: CHILD, callStatus: 'inProgress' });
    expect(shape(events)).toEqual([
      { type: 'ChildLegDialed', legId: PARENT, data: { childLegId: CHILD, parentLegId: PARENT } },
      { type: 'CallInitiated', legId: CHILD, data: { direction: 'outbound-dial', from: null, to: null } },
    ]);
    expect(events[1]!.parentLegId).toBe(PARENT);
  });

  it('outDialConnect inProgress → link + CallAnswered on the child', () => {
    const events = run({ requestType: 'outDialConnect', ...childLeg, callStatus: 'inProgress', dialCallStatus: 'inProgress' });
    expect(shape(events)).toEqual([
      { type: 'ChildLegDialed', legId: PARENT, data: { childLegId: CHILD, parentLegId: PARENT } },
      { type: 'CallAnswered', legId: CHILD, data: {} },
    ]);
    expect(events[1]!.party).toEqual({ direction: 'outbound-dial', from: '+13125550100', to: '+18475550163' });
  });

  it.each([
    ['busy', 'busy'],
    ['noAnswer', 'no-answer'],
    ['failed', 'failed'],
    ['canceled', 'canceled'],
  ])('outDialConnect %s → CallCompleted(%s) on the child + DialCompleted on the parent', (status, outcome) => {
    const events = run({ requestType: 'outDialConnect', ...childLeg, callStatus: status, dialCallStatus: status });
    expect(shape(events)).toEqual([
      { type: 'ChildLegDialed', legId: PARENT, data: { childLegId: CHILD, parentLegId: PARENT } },
      { type: 'CallCompleted', legId: CHILD, data: { outcome } },
      { type: 'DialCompleted', legId: PARENT, data: { childLegId: CHILD, outcome } },
    ]);
  });

  it('callStatus wins over the deprecated dialCallStatus when they disagree', () => {
    const events = run({ requestType: 'outDialConnect', ...childLeg, callStatus: 'busy', dialCallStatus: 'inProgress' });
    expect(events.map((e) => e.type)).toContain('CallCompleted');
  });

  it('outDialApiConnect inProgress → CallInitiated(outbound-api) + link + CallAnswered', () => {
    const events = run({
      requestType: 'outDialApiConnect', ...base, callId: API_LEG, parentCallId: PARENT, from: '+13125550100', to: '+16305550188',
      callStatus: 'inProgress', dialCallStatus: 'inProgress', direction: 'outboundAPI',
    });
    expect(shape(events)).toEqual([
      { type: 'CallInitiated', legId: API_LEG, data: { direction: 'outbound-api', from: '+13125550100', to: '+16305550188' } },
      { type: 'ChildLegDialed', legId: PARENT, data: { childLegId: API_LEG, parentLegId: PARENT } },
      { type: 'CallAnswered', legId: API_LEG, data: {} },
    ]);
  });

  it('outDialApiConnect failure without parent → CallInitiated + CallCompleted(outcome), no DialCompleted', () => {
    const events = run({
      requestType: 'outDialApiConnect', ...base, callId: API_LEG, parentCallId: null, from: '+13125550100', to: '+16305550188',
      callStatus: 'noAnswer', direction: 'outbound',
    });
    expect(shape(events)).toEqual([
      { type: 'CallInitiated', legId: API_LEG, data: { direction: 'outbound-api', from: '+13125550100', to: '+16305550188' } },
      { type: 'CallCompleted', legId: API_LEG, data: { outcome: 'no-answer' } },
    ]);
  });

  it('callStatus → CallCompleted with duration and end reason + call recording', () => {
    const events = run({
      requestType: 'callStatus', ...childLeg, callStatus: 'completed', callEndedReason: 'farEndHangup', callDuration: '74',
      recordingId: REC, recordingUrl: recUrl, recordingDurationSec: 71,
    });
    expect(shape(events)).toEqual([
      { type: 'CallCompleted', legId: CHILD, data: { outcome: 'completed', durationSec: 74, endReason: 'farEndHangup' } },
      { type: 'RecordingAvailable', legId: CHILD, data: { recordingId: REC, url: recUrl, durationSec: 71, scope: 'call' } },
    ]);
  });

  it('callStatus with an empty recording emits no RecordingAvailable', () => {
    const events = run({ requestType: 'callStatus', ...inboundLeg, callStatus: 'noAnswer', recordingUrl: '', recordingId: null });
    expect(shape(events)).toEqual([{ type: 'CallCompleted', legId: PARENT, data: { outcome: 'no-answer' } }]);
  });

  it.each([
    ['answering machine', 'machine'],
    ['fax modem', 'fax'],
  ])('machineDetected "%s" → MachineDetected(%s)', (machineType, result) => {
    const events = run({ requestType: 'machineDetected', ...childLeg, callStatus: 'inProgress', machineType });
    // The webhook's callStatus inProgress also answers the leg (docs/providers.md, "What is read from each webhook kind").
    expect(shape(events)).toEqual([
      { type: 'MachineDetected', legId: CHILD, data: { result, detail: machineType } },
      { type: 'CallAnswered', legId: CHILD, data: {} },
    ]);
  });

  it('record → RecordingAvailable(utterance)', () => {
    const events = hookRun({
      requestType: 'record', ...inboundLeg, callStatus: 'inProgress', recordingId: REC, recordingUrl: recUrl,
      recordingSize: '193644', recordingFormat: 'audio/wav', recordingDurationSec: 12, termReason: 'finishKey', privacyMode: false,
    });
    expect(shape(events)).toEqual([{ type: 'RecordingAvailable', legId: PARENT, data: { recordingId: REC, url: recUrl, durationSec: 12, scope: 'utterance' } }]);
  });

  it('transcribe → RecordingAvailable(ms → s) + SpeechRecognized', () => {
    const events = hookRun({
      requestType: 'transcribe', ...inboundLeg, callStatus: 'inProgress', recordingId: REC, recordingUrl: recUrl,
      recordingDurationMs: 4500, transcript: 'I need help with my bill', bargeInTimeMs: 1767225600000,
    });
    expect(shape(events)).toEqual([
      { type: 'RecordingAvailable', legId: PARENT, data: { recordingId: REC, url: recUrl, durationSec: 4.5, scope: 'utterance' } },
      { type: 'SpeechRecognized', legId: PARENT, data: { text: 'I need help with my bill' } },
    ]);
  });

  it('getDigits → DtmfReceived(gather)', () => {
    const events = hookRun({ requestType: 'getDigits', ...inboundLeg, callStatus: 'inProgress', digits: '42', reason: 'finishKey' });
    expect(shape(events)).toEqual([{ type: 'DtmfReceived', legId: PARENT, data: { digits: '42', reason: 'finishKey', source: 'gather' } }]);
  });

  it('getSpeech recognition → SpeechRecognized; other reasons → AppHook', () => {
    expect(shape(hookRun({ requestType: 'getSpeech', ...inboundLeg, reason: 'recognition', recognitionResult: 'billing', confidence: 87 }))).toEqual([
      { type: 'SpeechRecognized', legId: PARENT, data: { text: 'billing', confidence: 87 } },
    ]);
    expect(hookRun({ requestType: 'getSpeech', ...inboundLeg, reason: 'noInput' }).map((e) => e.type)).toEqual(['AppHook']);
  });

  it('callControl → DtmfReceived(call-control)', () => {
    const events = hookRun({ requestType: 'callControl', ...childLeg, conferenceId: CONF, digits: '*1' });
    expect(shape(events)).toEqual([{ type: 'DtmfReceived', legId: CHILD, data: { digits: '*1', source: 'call-control' } }]);
  });

  it('addToConferenceNotification / leaveConference → ConferenceJoined / ConferenceLeft', () => {
    expect(shape(hookRun({ requestType: 'addToConferenceNotification', ...childLeg, conferenceId: CONF, callStatus: 'inProgress', status: 'inProgress' }))).toEqual([
      { type: 'ConferenceJoined', legId: CHILD, data: { conferenceId: CONF } },
    ]);
    expect(shape(hookRun({ requestType: 'leaveConference', ...childLeg, conferenceId: CONF, callStatus: 'inProgress' }))).toEqual([
      { type: 'ConferenceLeft', legId: CHILD, data: { conferenceId: CONF } },
    ]);
  });

  it('conferenceStatus / createConference → ConferenceStatusChanged; recording → RecordingAvailable(conference)', () => {
    expect(shape(hookRun({ requestType: 'createConference', ...inboundLeg, conferenceId: CONF, status: 'empty' }))).toEqual([
      { type: 'ConferenceStatusChanged', legId: PARENT, data: { conferenceId: CONF, status: 'empty' } },
    ]);
    expect(shape(hookRun({ requestType: 'conferenceStatus', ...inboundLeg, conferenceId: CONF, status: 'terminated', recordingUrl: recUrl, recordingId: REC, recordingDurationSec: 318 }))).toEqual([
      { type: 'ConferenceStatusChanged', legId: PARENT, data: { conferenceId: CONF, status: 'terminated' } },
      { type: 'RecordingAvailable', legId: PARENT, data: { recordingId: REC, url: recUrl, durationSec: 318, scope: 'conference', status: 'terminated' } },
    ]);
  });

  it('conferenceRecordingStatus → RecordingAvailable(conference)', () => {
    const events = hookRun({ requestType: 'conferenceRecordingStatus', ...inboundLeg, conferenceId: CONF, callStatus: 'inProgress', status: 'empty', recordingId: REC, recordingUrl: recUrl, recordingDurationSec: 318 });
    expect(shape(events)).toEqual([
      { type: 'RecordingAvailable', legId: PARENT, data: { recordingId: REC, url: recUrl, durationSec: 318, scope: 'conference', status: 'empty' } },
    ]);
  });

  it('queue webhooks → QueueEntered / QueueLeft', () => {
    expect(shape(hookRun({ requestType: 'addToQueueNotification', ...inboundLeg, queueId: 'QU1', queueTime: 0 }))).toEqual([
      { type: 'QueueEntered', legId: PARENT, data: { queueId: 'QU1', queueTimeSec: 0 } },
    ]);
    expect(shape(hookRun({ requestType: 'dequeue', ...inboundLeg, queueId: 'QU1', queueTime: '35', queueResult: 'dequeued' }))).toEqual([
      { type: 'QueueLeft', legId: PARENT, data: { queueId: 'QU1', queueTimeSec: 35, result: 'dequeued' } },
    ]);
    expect(hookRun({ requestType: 'removeFromQueueNotification', ...inboundLeg, queueId: 'QU1', queueResult: 'hangup' }).map((e) => e.type)).toEqual(['QueueLeft']);
  });

  it('redirect and queueWait → AppHook', () => {
    expect(hookRun({ requestType: 'redirect', ...inboundLeg }).map((e) => e.type)).toEqual(['AppHook']);
    expect(hookRun({ requestType: 'queueWait', ...inboundLeg, queueId: 'QU1' }).map((e) => e.type)).toEqual(['AppHook']);
  });

  it('SMS and unknown request types → UnrecognizedWebhook on the leg, with the reason', () => {
    const [e] = run({ requestType: 'messageStatus', accountId: ACC, callId: PARENT, messageId: 'SM1' });
    expect(e).toMatchObject({ type: 'UnrecognizedWebhook', legId: PARENT, accountId: ACC });
    expect((e!.data as { reason: string }).reason).toContain('messageStatus');
  });

  it.each([
    ['invalid JSON', Buffer.from('{"requestType":')],
    ['a JSON array', Buffer.from('[1,2]')],
    ['an empty body', Buffer.alloc(0)],
    ['invalid UTF-8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d])],
    ['no requestType', Buffer.from(JSON.stringify({ callId: PARENT }))],
    ['a wrongly typed field', Buffer.from(JSON.stringify({ requestType: 'callStatus', callId: 42 }))],
  ])('%s → one UnrecognizedWebhook, never a throw', (_label, body) => {
    const events = translateFreeclimbWebhook(body, ctx);
    expect(events).toHaveLength(1);
    expect(events[0]!.type).toBe('UnrecognizedWebhook');
    expect((events[0]!.data as { reason: string }).reason.length).toBeGreaterThan(5);
  });
});

describe('issue 11: what action webhooks say about their leg', () => {
  // FreeClimb openapi (FreeClimbAPI/nodejs-sdk openapi.json) RecordWebhook: the common request fields include the
  // leg's from, to, direction and callStatus.
  it('record keeps the leg from/to/direction and answers it', () => {
    const events = run({ requestType: 'record', ...inboundLeg, callStatus: 'inProgress', recordingId: REC, recordingUrl: recUrl, recordingDurationSec: 3 });
    expect(events[0]!.party).toEqual({ direction: 'inbound', from: '+13125550147', to: '+13125550100' });
    expect(shape(events).map((e) => e.type)).toEqual(['RecordingAvailable', 'CallAnswered']);
  });

  it('a getDigits of a leg that is already over ends it; machineDetected answers it', () => {
    expect(shape(run({ requestType: 'getDigits', ...inboundLeg, callStatus: 'completed', digits: '1', reason: 'timeout' }))).toEqual([
      { type: 'DtmfReceived', legId: PARENT, data: { digits: '1', reason: 'timeout', source: 'gather' } },
      { type: 'CallCompleted', legId: PARENT, data: { outcome: 'completed' } },
    ]);
  });

  it('the webhooks that already carry the status are not doubled', () => {
    expect(run({ ...inboundLeg, callStatus: 'ringing', requestType: 'inboundCall' }).map((e) => e.type)).toEqual(['CallInitiated', 'CallRinging']);
  });
});
