import { describe, expect, it } from 'vitest';
import type { Provider, TranslatedEvent, TranslationContext } from '@lib/ledger';
import { translateRcmlWebhook } from './rcml.translate.js';
import { parseRcmlTimestamp } from './rcml.timestamp.js';

/**
 * Issue 11: what the Twilio and Restcomm dialects say about a call's outcome beyond the status callback. Each
 * case names the provider source it rests on.
 */
const ctx = (provider: Provider, path = '/status'): TranslationContext => ({
  provider,
  path,
  query: new URLSearchParams(),
  contentType: 'application/x-www-form-urlencoded',
});
const form = (fields: Record<string, string>): Buffer => Buffer.from(new URLSearchParams(fields).toString());
const run = (fields: Record<string, string>, provider: Provider = 'twilio', path = '/status'): TranslatedEvent[] =>
  translateRcmlWebhook(form(fields), ctx(provider, path));
const shape = (events: TranslatedEvent[]) => events.map((e) => ({ type: e.type, legId: e.legId, data: e.data }));

const CALL = 'CA1111aaaa2222bbbb3333cccc4444dddd';
const ACC = 'ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX';

describe('Twilio answering-machine detection (https://www.twilio.com/docs/voice/answering-machine-detection#webhook-parameters)', () => {
  it.each([
    ['human', 'human'],
    ['machine_start', 'machine'],
    ['machine_end_beep', 'beep'],
    ['machine_end_silence', 'machine'],
    ['machine_end_other', 'machine'],
    ['fax', 'fax'],
    ['unknown', 'unknown'],
  ])('AsyncAmdStatusCallback AnsweredBy=%s -> MachineDetected(%s), the provider value as detail', (answeredBy, result) => {
    const events = run({ AccountSid: ACC, AnsweredBy: answeredBy, CallSid: CALL, MachineDetectionDuration: '4210' }, 'twilio', '/amd');
    expect(shape(events)).toEqual([{ type: 'MachineDetected', legId: CALL, data: { result, detail: answeredBy, detectionMs: 4210 } }]);
    expect(events[0]!.accountId).toBe(ACC);
  });

  it('synchronous AMD: AnsweredBy on the voice URL request rides beside the answer', () => {
    const events = run({ AccountSid: ACC, AnsweredBy: 'machine_start', CallSid: CALL, CallStatus: 'in-progress', Direction: 'outbound-api', From: '+15017122661', To: '+15558675310' }, 'twilio', '/voice');
    expect(shape(events)).toEqual([
      { type: 'CallAnswered', legId: CALL, data: {} },
      { type: 'MachineDetected', legId: CALL, data: { result: 'machine', detail: 'machine_start' } },
    ]);
  });

  it('AnsweredBy on a status callback is read too', () => {
    const events = run({ AccountSid: ACC, AnsweredBy: 'human', CallDuration: '12', CallSid: CALL, CallStatus: 'completed', CallbackSource: 'call-progress-events', SequenceNumber: '3' });
    expect(events.map((e) => e.type)).toEqual(['CallCompleted', 'MachineDetected']);
  });
});

describe("Twilio's completed is not Restcomm's", () => {
  const completed = (duration?: string) => ({
    AccountSid: ACC, CallSid: CALL, CallStatus: 'completed', CallbackSource: 'call-progress-events', SequenceNumber: '0',
    ...(duration === undefined ? {} : { CallDuration: duration }),
  });

  it('Twilio: completed means answered whatever CallDuration says (https://www.twilio.com/docs/voice/api/call-resource#call-status-values)', () => {
    for (const d of [undefined, '0', '14']) expect(run(completed(d))[0]!.data).toMatchObject({ outcome: 'completed' });
  });

  it('Restcomm: completed with no positive CallDuration may be unanswered (Restcomm-Connect Call.java CallbackState, DialStatusCallbackTest)', () => {
    expect(run(completed('0'), 'restcomm')[0]!.data).toMatchObject({ outcome: 'unanswered-unknown' });
    expect(run(completed('14'), 'restcomm')[0]!.data).toMatchObject({ outcome: 'completed' });
  });

  it('ErrorCode and ErrorMessage are the end reason detail (https://www.twilio.com/docs/voice/api/call-resource#statuscallback)', () => {
    const events = run({ AccountSid: ACC, CallSid: CALL, CallStatus: 'failed', CallbackSource: 'call-progress-events', ErrorCode: '13227', ErrorMessage: 'Dial: No International Authorization' });
    expect(events[0]!.data).toEqual({ outcome: 'failed', endReasonDetail: '13227: Dial: No International Authorization' });
  });
});

describe('the calling leg state in action callbacks (https://www.twilio.com/docs/voice/twiml/dial#action; Restcomm VoiceInterpreter parameters())', () => {
  const dial = { AccountSid: ACC, CallSid: CALL, Direction: 'inbound', From: '+1555', To: '+1666', DialCallSid: 'CAchild', DialCallDuration: '62' };

  it('Dial action CallStatus=in-progress answers the caller, completed ends it', () => {
    expect(run({ ...dial, CallStatus: 'in-progress', DialCallStatus: 'completed' }, 'twilio', '/dial-action').map((e) => e.type)).toEqual(['DialCompleted', 'ChildLegDialed', 'CallAnswered']);
    const ended = run({ ...dial, CallStatus: 'completed', DialCallStatus: 'completed' }, 'twilio', '/dial-action');
    expect(shape(ended).at(-1)).toEqual({ type: 'CallCompleted', legId: CALL, data: { outcome: 'completed' } });
  });

  it('Restcomm: a bridged dial proves the caller answered; an unbridged completed stays ambiguous', () => {
    expect(run({ ...dial, CallStatus: 'completed', DialCallStatus: 'completed' }, 'restcomm', '/dial-action').at(-1)!.data).toEqual({ outcome: 'completed' });
    expect(run({ ...dial, CallStatus: 'completed', DialCallStatus: 'no-answer' }, 'restcomm', '/dial-action').at(-1)!.data).toEqual({ outcome: 'unanswered-unknown' });
  });

  it('Gather and Record actions carry the leg state too', () => {
    expect(run({ AccountSid: ACC, CallSid: CALL, CallStatus: 'in-progress', Digits: '5' }, 'twilio', '/gather').map((e) => e.type)).toEqual(['DtmfReceived', 'CallAnswered']);
  });
});

describe('Twilio conferences and queues map to the neutral events FreeClimb and jambonz use', () => {
  const conf = { AccountSid: ACC, ConferenceSid: 'CFabc', FriendlyName: 'room', SequenceNumber: '1', Timestamp: 'Mon, 05 Mar 2018 17:00:05 +0000' };

  it('conference statusCallback (https://www.twilio.com/docs/voice/twiml/conference#attributes-statuscallback)', () => {
    expect(shape(run({ ...conf, CallSid: CALL, StatusCallbackEvent: 'participant-join' }, 'twilio', '/conference'))).toEqual([{ type: 'ConferenceJoined', legId: CALL, data: { conferenceId: 'CFabc' } }]);
    expect(shape(run({ ...conf, CallSid: CALL, StatusCallbackEvent: 'participant-leave' }, 'twilio', '/conference'))).toEqual([{ type: 'ConferenceLeft', legId: CALL, data: { conferenceId: 'CFabc' } }]);
    expect(shape(run({ ...conf, CallSid: CALL, StatusCallbackEvent: 'conference-start' }, 'twilio', '/conference'))).toEqual([{ type: 'ConferenceStatusChanged', legId: CALL, data: { conferenceId: 'CFabc', status: 'start' } }]);
    expect(shape(run({ ...conf, CallSidEndingConference: CALL, StatusCallbackEvent: 'conference-end' }, 'twilio', '/conference'))).toEqual([{ type: 'ConferenceStatusChanged', legId: CALL, data: { conferenceId: 'CFabc', status: 'end' } }]);
    expect(run({ ...conf, CallSid: CALL, StatusCallbackEvent: 'participant-mute' }, 'twilio', '/conference')[0]).toMatchObject({ type: 'AppHook', data: { kind: 'conference:participant-mute' } });
    expect(run({ ...conf, CallSid: CALL, StatusCallbackEvent: 'participant-join' }, 'twilio', '/conference')[0]!.occurredAt).toBe('2018-03-05T17:00:05.000Z');
  });

  it('<Enqueue> action QueueResult/QueueTime -> QueueLeft; waitUrl QueuePosition -> QueueEntered (https://www.twilio.com/docs/voice/twiml/enqueue)', () => {
    expect(shape(run({ AccountSid: ACC, CallSid: CALL, CallStatus: 'in-progress', QueueResult: 'bridged', QueueSid: 'QU1', QueueTime: '34' }, 'twilio', '/enqueue'))).toEqual([
      { type: 'QueueLeft', legId: CALL, data: { queueId: 'QU1', queueTimeSec: 34, result: 'bridged' } },
      { type: 'CallAnswered', legId: CALL, data: {} },
    ]);
    expect(shape(run({ AccountSid: ACC, CallSid: CALL, QueuePosition: '2', QueueSid: 'QU1', QueueTime: '5', AvgQueueTime: '30', CurrentQueueSize: '3' }, 'twilio', '/wait'))).toEqual([
      { type: 'QueueEntered', legId: CALL, data: { queueId: 'QU1', queueTimeSec: 5 } },
    ]);
  });
});

describe('provider clocks', () => {
  it("Restcomm CallTimestamp is the call's creation: the CallInitiated's provider time (Restcomm-Connect VoiceInterpreter parameters())", () => {
    const events = run({ AccountSid: ACC, CallSid: CALL, CallStatus: 'in-progress', Digits: '1', CallTimestamp: '2018-01-05T14:02:10.118Z', Direction: 'inbound' }, 'restcomm', '/gather');
    expect(events.find((e) => e.type === 'CallInitiated')).toMatchObject({ legId: CALL, occurredAt: '2018-01-05T14:02:10.118Z' });
  });

  it.each([
    ['Mon, 05 Mar 2018 14:03:10 +0000', '2018-03-05T14:03:10.000Z'],
    ['Mon, 05 Mar 2018 14:03:10.250 +0000', '2018-03-05T14:03:10.250Z'],
    ['2018-03-05T14:03:10Z', '2018-03-05T14:03:10.000Z'],
    ['2018-03-05 14:03:10', '2018-03-05T14:03:10.000Z'],
    ['2018-03-05 14:03:10.123456', '2018-03-05T14:03:10.123Z'],
    ['2018-03-05 14:03:10+01:00', '2018-03-05T13:03:10.000Z'],
    ['2018-03-05 14:03:10 +0100', '2018-03-05T13:03:10.000Z'],
    ['2018-03-05 14:03:10 UTC', '2018-03-05T14:03:10.000Z'],
    ['2018-02-31 14:03:10', null],
  ])('Twilio-style Timestamp %j -> %j', (text, iso) => {
    expect(parseRcmlTimestamp(text)).toBe(iso);
  });
});
