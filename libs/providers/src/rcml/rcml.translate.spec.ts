import { describe, it, expect } from 'vitest';
import type { Provider, TranslatedEvent, TranslationContext } from '@lib/ledger';
import { parseFormBody } from './rcml.payloads.js';
import { recordingIdOf, translateRcmlWebhook } from './rcml.translate.js';

// Invented ids in Restcomm's shapes (docs/providers.md, "Restcomm and Twilio requests"): CallSid = ID<32 hex>-CA<32 hex>.
const INSTANCE = 'IDe63fbd64e6e52e61d091a29ebda913cd';
const PARENT = `${INSTANCE}-CA5a6782f238f8f435013bdb74e077ea2e`;
const CHILD = `${INSTANCE}-CAa70218d4ad6c1afddfe70660bf5778c9`;
const ACCOUNT = 'AC3400a93de0af06b7fac26e9762932f51';
const RECORDING = 'REc9b8ce99b8c8c616d753420c6f9abe79';

const ctx = (path = '', provider: Provider = 'restcomm', query = ''): TranslationContext => ({
  provider,
  path,
  query: new URLSearchParams(query),
  contentType: 'application/x-www-form-urlencoded; charset=UTF-8',
});
const raw = (...lines: string[]): Buffer => Buffer.from(lines.join(''), 'utf8');
const run = (body: Buffer, c: TranslationContext = ctx()): TranslatedEvent[] => translateRcmlWebhook(body, c);
const types = (events: TranslatedEvent[]): string[] => events.map((e) => e.type);

// docs/providers.md, "Restcomm and Twilio requests" inbound voice request (family A), as UrlEncodedFormEntity sends it.
const inboundVoiceRequest = (status: string): Buffer =>
  raw(
    `CallSid=${PARENT}&InstanceId=${INSTANCE}&AccountSid=${ACCOUNT}`,
    `&From=%2B12125550177&To=%2B12125550100&CallStatus=${status}&ApiVersion=2012-04-24&Direction=inbound`,
    '&CallerName=null&ForwardedFrom=null&CallTimestamp=2026-01-05T14%3A02%3A10.118Z&SipHeader_X-Customer-Ref=7731',
  );

// docs/providers.md, "Restcomm and Twilio requests" call-progress callback of a <Dial><Number statusCallback> child (family C).
const childProgress = (status: string, seq: number, extra = ''): Buffer =>
  raw(
    `InstanceId=${INSTANCE}&AccountSid=${ACCOUNT}`,
    `&CallSid=${CHILD}&From=12125550100&To=13105550142`,
    '&Direction=outbound-dial&CallerName=12125550100&ForwardedFrom',
    `&ParentCallSid=${PARENT}&CallStatus=${status}${extra}`,
    `&Timestamp=Mon%2C+05+Jan+2026+14%3A05%3A5${seq}+UTC&CallbackSource=call-progress-events&SequenceNumber=${seq}`,
  );

// docs/providers.md, "Restcomm and Twilio requests" Dial action (family D), parent context.
const dialAction = (dial: string, recording = '&RecordingUrl&PublicRecordingUrl'): Buffer =>
  raw(
    `CallSid=${PARENT}&InstanceId=${INSTANCE}&OutboundCallSid=${CHILD}&AccountSid=${ACCOUNT}`,
    '&From=%2B12125550177&To=%2B12125550100&CallStatus=in-progress&ApiVersion=2012-04-24&Direction=inbound',
    '&CallerName=null&ForwardedFrom=null&CallTimestamp=2026-01-05T14%3A02%3A10.118Z',
    dial,
    recording,
  );

describe('translateRcmlWebhook — table 4.5', () => {
  it('A: inbound voice request, ringing -> CallInitiated + CallRinging on CallSid', () => {
    const events = run(inboundVoiceRequest('ringing'), ctx('voice'));
    expect(types(events)).toEqual(['CallInitiated', 'CallRinging']);
    expect(events[0]).toEqual({
      type: 'CallInitiated',
      legId: PARENT,
      accountId: ACCOUNT,
      parentLegId: null,
      // CallTimestamp, the call's creation time (RC-vi parameters()), is the CallInitiated's provider time (docs/providers.md, "Which clock each leg time comes from").
      occurredAt: '2026-01-05T14:02:10.118Z',
      providerSeq: null,
      party: { direction: 'inbound', from: '+12125550177', to: '+12125550100' },
      data: { direction: 'inbound', from: '+12125550177', to: '+12125550100' },
    });
    expect(events[1]).toMatchObject({ legId: PARENT, accountId: ACCOUNT, data: {} });
  });

  it('A: inbound voice request already in-progress (after <Redirect>) -> CallInitiated + CallAnswered', () => {
    expect(types(run(inboundVoiceRequest('in-progress'), ctx('voice')))).toEqual(['CallInitiated', 'CallAnswered']);
  });

  it('A: outbound-api voice request, in-progress -> CallAnswered on CallSid', () => {
    const body = raw(
      `CallSid=${CHILD}&InstanceId=${INSTANCE}&AccountSid=${ACCOUNT}&From=%2B12125550100&To=%2B13105550142`,
      '&CallStatus=in-progress&ApiVersion=2012-04-24&Direction=outbound-api&CallerName=null&ForwardedFrom',
      '&CallTimestamp=2026-01-05T14%3A02%3A10.118Z',
    );
    const events = run(body, ctx('voice'));
    expect(types(events)).toEqual(['CallAnswered', 'CallInitiated']);
    expect(events[1]).toMatchObject({ legId: CHILD, occurredAt: '2026-01-05T14:02:10.118Z' });
    expect(events[0]).toMatchObject({
      type: 'CallAnswered',
      legId: CHILD,
      accountId: ACCOUNT,
      party: { direction: 'outbound-api', from: '+12125550100', to: '+13105550142' },
      data: {},
    });
  });

  describe('B: number status callback', () => {
    it('ringing -> CallRinging (with the idempotent CallInitiated of an inbound leg)', () => {
      expect(types(run(inboundVoiceRequest('ringing'), ctx('status')))).toEqual(['CallInitiated', 'CallRinging']);
    });

    it('in-progress -> CallAnswered (with the idempotent CallInitiated of an inbound leg)', () => {
      const events = run(inboundVoiceRequest('in-progress'), ctx('status'));
      expect(types(events)).toEqual(['CallInitiated', 'CallAnswered']);
      expect(events.every((e) => e.legId === PARENT)).toBe(true);
    });

    it('completed -> CallCompleted(completed, durationSec)', () => {
      const events = run(raw(`${inboundVoiceRequest('completed').toString()}&CallDuration=41`), ctx('status'));
      expect(types(events)).toEqual(['CallCompleted', 'CallInitiated']);
      expect(events[0]).toMatchObject({ type: 'CallCompleted', legId: PARENT, accountId: ACCOUNT, data: { outcome: 'completed', durationSec: 41 } });
    });

    it.each([
      ['busy', 'busy'],
      ['failed', 'failed'],
      ['no-answer', 'no-answer'],
      ['canceled', 'canceled'],
      ['not-found', 'failed'],
    ])('%s -> CallCompleted(%s)', (status, outcome) => {
      const events = run(inboundVoiceRequest(status), ctx('status'));
      expect(events).toEqual([
        expect.objectContaining({ type: 'CallCompleted', legId: PARENT, data: { outcome } }),
        expect.objectContaining({ type: 'CallInitiated', legId: PARENT, occurredAt: '2026-01-05T14:02:10.118Z' }),
      ]);
    });
  });

  it('C: initiated -> CallInitiated(child, parent, outbound-dial) + ChildLegDialed on the parent', () => {
    const events = run(childProgress('initiated', 0));
    expect(events).toEqual([
      {
        type: 'CallInitiated',
        legId: CHILD,
        accountId: ACCOUNT,
        parentLegId: PARENT,
        occurredAt: '2026-01-05T14:05:50.000Z',
        providerSeq: 0,
        party: { direction: 'outbound-dial', from: '12125550100', to: '13105550142' },
        data: { direction: 'outbound-dial', from: '12125550100', to: '13105550142' },
      },
      {
        type: 'ChildLegDialed',
        legId: PARENT,
        accountId: ACCOUNT,
        parentLegId: null,
        occurredAt: '2026-01-05T14:05:50.000Z',
        providerSeq: null,
        party: null,
        data: { childLegId: CHILD, parentLegId: PARENT },
      },
    ]);
  });

  it('C: ringing -> CallRinging', () => {
    const events = run(childProgress('ringing', 1));
    expect(events).toEqual([
      expect.objectContaining({ type: 'CallRinging', legId: CHILD, parentLegId: PARENT, providerSeq: 1, occurredAt: '2026-01-05T14:05:51.000Z', data: {} }),
    ]);
  });

  it('C: answered -> CallAnswered', () => {
    const events = run(childProgress('answered', 2));
    expect(events).toEqual([expect.objectContaining({ type: 'CallAnswered', legId: CHILD, parentLegId: PARENT, providerSeq: 2, data: {} })]);
  });

  it('C: Twilio in-progress -> CallAnswered, RFC 2822 Timestamp', () => {
    const body = raw(
      'AccountSid=AC0123456789abcdef0123456789abcdef&CallSid=CAfedcba9876543210fedcba9876543210',
      '&ParentCallSid=CA00112233445566778899aabbccddeeff&From=%2B15551230001&To=%2B15551230002',
      '&CallStatus=in-progress&Direction=outbound-dial&ApiVersion=2010-04-01&CallbackSource=call-progress-events',
      '&SequenceNumber=2&Timestamp=Mon%2C+05+Jan+2026+14%3A05%3A51+%2B0000&SipResponseCode=200',
    );
    const events = run(body, ctx('status', 'twilio'));
    expect(events).toEqual([
      expect.objectContaining({
        type: 'CallAnswered',
        legId: 'CAfedcba9876543210fedcba9876543210',
        parentLegId: 'CA00112233445566778899aabbccddeeff',
        occurredAt: '2026-01-05T14:05:51.000Z',
        providerSeq: 2,
        data: { sipStatus: 200 },
      }),
    ]);
  });

  it('C: completed after an answer -> CallCompleted(completed, durationSec=CallDuration)', () => {
    const events = run(childProgress('completed', 3, '&CallDuration=95'));
    expect(events).toEqual([
      expect.objectContaining({
        type: 'CallCompleted',
        legId: CHILD,
        accountId: ACCOUNT,
        parentLegId: PARENT,
        providerSeq: 3,
        occurredAt: '2026-01-05T14:05:53.000Z',
        data: { outcome: 'completed', durationSec: 95 },
      }),
    ]);
  });

  it('C: completed of a recorded outbound-api call -> CallCompleted + RecordingAvailable(scope call)', () => {
    const body = raw(
      `InstanceId=${INSTANCE}&AccountSid=${ACCOUNT}&CallSid=${CHILD}&From=12125550100&To=13105550142`,
      '&Direction=outbound-api&CallerName=12125550100&ForwardedFrom&ParentCallSid=null&CallStatus=completed&CallDuration=62',
      `&RecordingUrl=http%3A%2F%2Frc.example.net%3A8080%2Frestcomm%2F2012-04-24%2FAccounts%2F${ACCOUNT}%2FRecordings%2F${RECORDING}.wav`,
      `&RecordingSid=${RECORDING}&RecordingDuration=61`,
      '&Timestamp=Mon%2C+05+Jan+2026+16%3A05%3A51+Europe%2FAthens&CallbackSource=call-progress-events&SequenceNumber=3',
    );
    const events = run(body);
    expect(types(events)).toEqual(['CallCompleted', 'RecordingAvailable']);
    expect(events[0]).toMatchObject({ legId: CHILD, parentLegId: null, occurredAt: '2026-01-05T14:05:51.000Z', data: { outcome: 'completed', durationSec: 62 } });
    expect(events[1]).toMatchObject({
      type: 'RecordingAvailable',
      legId: CHILD,
      data: {
        recordingId: RECORDING,
        url: `http://rc.example.net:8080/restcomm/2012-04-24/Accounts/${ACCOUNT}/Recordings/${RECORDING}.wav`,
        durationSec: 61,
        scope: 'call',
      },
    });
  });

  it.each([
    ['busy', 'busy'],
    ['no-answer', 'no-answer'],
    ['failed', 'failed'],
    ['canceled', 'canceled'],
  ])('C: Twilio-style %s -> CallCompleted(%s)', (status, outcome) => {
    const body = raw(
      'AccountSid=AC0123456789abcdef0123456789abcdef&CallSid=CAfedcba9876543210fedcba9876543210',
      `&From=%2B15551230001&To=%2B15551230002&CallStatus=${status}&Direction=outbound-api&ApiVersion=2010-04-01`,
      '&CallDuration=0&CallbackSource=call-progress-events&SequenceNumber=3&Timestamp=Mon%2C+05+Jan+2026+14%3A05%3A51+%2B0000',
    );
    const events = run(body, ctx('status', 'twilio'));
    expect(events).toEqual([
      expect.objectContaining({ type: 'CallCompleted', legId: 'CAfedcba9876543210fedcba9876543210', data: { outcome, durationSec: 0 } }),
    ]);
  });

  it('D: child answered and hung up -> DialCompleted + ChildLegDialed on the parent (bare RecordingUrl: no recording)', () => {
    const events = run(dialAction(`&DialRingDuration=6&DialCallSid=${CHILD}&DialCallStatus=completed&DialCallDuration=95`), ctx('dial-action'));
    // The parent's own CallStatus=in-progress answers the parent (docs/providers.md, "What is read from each webhook kind"); CallTimestamp starts it.
    expect(types(events)).toEqual(['DialCompleted', 'ChildLegDialed', 'CallAnswered', 'CallInitiated']);
    expect(events[2]).toMatchObject({ legId: PARENT, data: {} });
    expect(events[0]).toMatchObject({
      legId: PARENT,
      accountId: ACCOUNT,
      party: { direction: 'inbound', from: '+12125550177', to: '+12125550100' },
      data: { childLegId: CHILD, outcome: 'completed', durationSec: 95, ringDurationSec: 6 },
    });
    expect(events[1]).toMatchObject({ legId: PARENT, data: { childLegId: CHILD, parentLegId: PARENT } });
  });

  it('D: <Dial record> -> DialCompleted + ChildLegDialed + RecordingAvailable(scope dial)', () => {
    const url = `http://rc.example.net:8080/restcomm/2012-04-24/Accounts/${ACCOUNT}/Recordings/${RECORDING}.wav`;
    const events = run(
      dialAction(
        `&DialRingDuration=4&DialCallSid=${CHILD}&DialCallStatus=completed&DialCallDuration=30`,
        `&RecordingUrl=${encodeURIComponent(url)}&PublicRecordingUrl=${encodeURIComponent(url)}`,
      ),
    );
    expect(types(events)).toEqual(['DialCompleted', 'ChildLegDialed', 'CallAnswered', 'RecordingAvailable', 'CallInitiated']);
    expect(events[3]).toMatchObject({ legId: PARENT, data: { recordingId: RECORDING, url, scope: 'dial' } });
  });

  it('D: DialCallSid "null" (failed before the child existed) -> DialCompleted only, with the SIP status', () => {
    const events = run(dialAction('&DialCallSid=null&DialCallStatus=failed&DialCallDuration=0&DialSipCallId=abc%40rc&DialSipResponseCode=503'));
    expect(events).toEqual([
      expect.objectContaining({ type: 'DialCompleted', legId: PARENT, data: { outcome: 'failed', durationSec: 0, sipStatus: 503 } }),
      expect.objectContaining({ type: 'CallAnswered', legId: PARENT }),
      expect.objectContaining({ type: 'CallInitiated', legId: PARENT }),
    ]);
  });

  it.each([
    ['busy', 'busy'],
    ['no-answer', 'no-answer'],
    ['canceled', 'canceled'],
    ['not-found', 'failed'],
    ['null', 'unknown'],
    ['', 'unknown'],
    ['in-progress', 'unknown'],
    ['wait-for-answer', 'unknown'],
  ])('D: DialCallStatus=%j -> outcome %s', (status, outcome) => {
    const events = run(dialAction(`&DialCallSid=${CHILD}&DialCallStatus=${status}&DialCallDuration=0`));
    expect(events[0]).toMatchObject({ type: 'DialCompleted', legId: PARENT, data: { childLegId: CHILD, outcome } });
  });

  it('E: record action -> RecordingAvailable(utterance, float duration, id from URL) + DtmfReceived(#)', () => {
    const url = `http://rc.example.net:8080/restcomm/2012-04-24/Accounts/${ACCOUNT}/Recordings/${RECORDING}.wav`;
    const body = raw(
      `${inboundVoiceRequest('in-progress').toString()}`,
      `&RecordingUrl=${encodeURIComponent(url)}`,
      `&PublicRecordingUrl=http%3A%2F%2Frc.example.net%2Frestcomm%2Frecordings%2F${RECORDING}.wav&RecordingDuration=8.42&Digits=%23`,
    );
    const events = run(body, ctx('record'));
    expect(types(events)).toEqual(['RecordingAvailable', 'DtmfReceived', 'CallAnswered', 'CallInitiated']);
    expect(events[0]).toMatchObject({ legId: PARENT, accountId: ACCOUNT, data: { recordingId: RECORDING, url, durationSec: 8.42, scope: 'utterance' } });
    expect(events[1]).toMatchObject({ legId: PARENT, data: { digits: '#', source: 'gather' } });
  });

  it('E: Digits=hangup is not a key press', () => {
    const body = raw(
      `${inboundVoiceRequest('completed').toString()}`,
      `&RecordingUrl=http%3A%2F%2Frc.example.net%2Frestcomm%2Frecordings%2F${RECORDING}.wav&RecordingDuration=3.0&Digits=hangup`,
    );
    // The caller hung up to end the recording: CallStatus=completed ends the leg (a <Record> ran, so it was answered).
    const events = run(body);
    expect(types(events)).toEqual(['RecordingAvailable', 'CallCompleted', 'CallInitiated']);
    expect(events[1]).toMatchObject({ legId: PARENT, data: { outcome: 'completed' } });
  });

  it('F: gather action with Digits -> DtmfReceived', () => {
    const events = run(raw(`${inboundVoiceRequest('in-progress').toString()}&Digits=1234`), ctx('gather'));
    expect(events).toEqual([
      expect.objectContaining({ type: 'DtmfReceived', legId: PARENT, data: { digits: '1234', source: 'gather' } }),
      expect.objectContaining({ type: 'CallAnswered', legId: PARENT }),
      expect.objectContaining({ type: 'CallInitiated', legId: PARENT }),
    ]);
  });

  it('F: gather action with SpeechResult -> SpeechRecognized', () => {
    const events = run(raw(`${inboundVoiceRequest('in-progress').toString()}&SpeechResult=talk+to+sales&Confidence=0.91`));
    expect(events).toEqual([
      expect.objectContaining({ type: 'SpeechRecognized', legId: PARENT, data: { text: 'talk to sales', confidence: 0.91 } }),
      expect.objectContaining({ type: 'CallAnswered', legId: PARENT }),
      expect.objectContaining({ type: 'CallInitiated', legId: PARENT }),
    ]);
  });

  it('Twilio recording status completed -> RecordingAvailable(scope from RecordingSource, status)', () => {
    const body = raw(
      'AccountSid=AC0123456789abcdef0123456789abcdef&CallSid=CA00112233445566778899aabbccddeeff',
      '&RecordingSid=RE0123456789abcdef0123456789abcdef',
      '&RecordingUrl=https%3A%2F%2Fapi.twilio.com%2F2010-04-01%2FAccounts%2FAC0123456789abcdef0123456789abcdef%2FRecordings%2FRE0123456789abcdef0123456789abcdef',
      '&RecordingStatus=completed&RecordingDuration=93&RecordingChannels=2',
      '&RecordingStartTime=Mon%2C+05+Jan+2026+14%3A04%3A16+%2B0000&RecordingSource=DialVerb',
    );
    const events = run(body, ctx('recording', 'twilio'));
    expect(events).toEqual([
      expect.objectContaining({
        type: 'RecordingAvailable',
        legId: 'CA00112233445566778899aabbccddeeff',
        accountId: 'AC0123456789abcdef0123456789abcdef',
        data: {
          recordingId: 'RE0123456789abcdef0123456789abcdef',
          url: 'https://api.twilio.com/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Recordings/RE0123456789abcdef0123456789abcdef',
          durationSec: 93,
          scope: 'dial',
          status: 'completed',
        },
      }),
    ]);
  });

  it.each([
    ['RecordVerb', 'utterance'],
    ['Conference', 'conference'],
    ['OutboundAPI', 'call'],
    ['', 'call'],
  ])('Twilio recording status: RecordingSource %j -> scope %s', (source, scope) => {
    const body = raw(
      'AccountSid=AC0123456789abcdef0123456789abcdef&CallSid=CA00112233445566778899aabbccddeeff&RecordingSid=RE0123456789abcdef0123456789abcdef',
      `&RecordingUrl=https%3A%2F%2Fapi.twilio.com%2Fr&RecordingStatus=completed&RecordingDuration=5&RecordingSource=${source}`,
    );
    expect(run(body)[0]).toMatchObject({ type: 'RecordingAvailable', data: { scope } });
  });

  it('Twilio recording status other than completed -> AppHook', () => {
    const body = raw(
      'AccountSid=AC0123456789abcdef0123456789abcdef&CallSid=CA00112233445566778899aabbccddeeff&RecordingSid=RE0123456789abcdef0123456789abcdef',
      '&RecordingUrl&RecordingStatus=failed&ErrorCode=13617',
    );
    expect(run(body)).toEqual([expect.objectContaining({ type: 'AppHook', legId: 'CA00112233445566778899aabbccddeeff', data: { kind: 'recording-status:failed' } })]);
  });

  it('other -> UnrecognizedWebhook with the leg and account it could read', () => {
    const events = run(raw(`CallSid=${PARENT}&AccountSid=${ACCOUNT}&ApiVersion=2012-04-24`));
    expect(events).toEqual([expect.objectContaining({ type: 'UnrecognizedWebhook', legId: PARENT, accountId: ACCOUNT })]);
  });
});

describe('translateRcmlWebhook — sequences and edge cases', () => {
  it('Restcomm unanswered leg: initiated(0), ringing(1), completed(3, CallDuration=0) -> unanswered-unknown', () => {
    const all = [childProgress('initiated', 0), childProgress('ringing', 1), childProgress('completed', 3, '&CallDuration=0')].map((b) => run(b));
    expect(all.map(types)).toEqual([['CallInitiated', 'ChildLegDialed'], ['CallRinging'], ['CallCompleted']]);
    expect(all.map((events) => events[0]!.providerSeq)).toEqual([0, 1, 3]);
    expect(all[2]![0]).toMatchObject({ legId: CHILD, data: { outcome: 'unanswered-unknown', durationSec: 0 } });
  });

  it('an AMD status callback with an empty AnsweredBy is kept as unrecognized, never a null event', () => {
    const events = run(raw('CallSid=CA1&AccountSid=AC1&AnsweredBy='), ctx('amd', 'twilio'));
    expect(events).toEqual([expect.objectContaining({ type: 'UnrecognizedWebhook', legId: 'CA1', accountId: 'AC1' })]);
  });

  it('completed without CallDuration is also not proof of an answer', () => {
    expect(run(childProgress('completed', 3))[0]).toMatchObject({ type: 'CallCompleted', data: { outcome: 'unanswered-unknown' } });
  });

  it('reads Joda zone-id Timestamps into occurredAt', () => {
    const body = Buffer.from(
      childProgress('ringing', 1).toString().replace(/Timestamp=[^&]*/, 'Timestamp=Mon%2C+05+Jan+2026+16%3A05%3A51+Europe%2FAthens'),
    );
    expect(run(body)[0]!.occurredAt).toBe('2026-01-05T14:05:51.000Z');
  });

  it('keeps the event when the Timestamp cannot be parsed', () => {
    const body = Buffer.from(childProgress('ringing', 1).toString().replace(/Timestamp=[^&]*/, 'Timestamp=whenever'));
    expect(run(body)).toEqual([expect.objectContaining({ type: 'CallRinging', occurredAt: null, providerSeq: 1 })]);
  });

  it('invalid UTF-8 -> UnrecognizedWebhook', () => {
    const body = Buffer.concat([Buffer.from(`CallSid=${PARENT}&From=`), Buffer.from([0xc3, 0x28]), Buffer.from('&CallStatus=ringing')]);
    expect(run(body)).toEqual([expect.objectContaining({ type: 'UnrecognizedWebhook', legId: null, data: { reason: 'body is not valid UTF-8' } })]);
  });

  it('percent-encoded invalid UTF-8 -> UnrecognizedWebhook', () => {
    const events = run(raw(`CallSid=${PARENT}&CallerName=%C3%28&CallStatus=ringing&Direction=inbound`));
    expect(types(events)).toEqual(['UnrecognizedWebhook']);
  });

  it('empty body -> UnrecognizedWebhook', () => {
    expect(run(Buffer.alloc(0))).toEqual([expect.objectContaining({ type: 'UnrecognizedWebhook', legId: null, data: { reason: 'empty body' } })]);
  });

  it('empty body of a GET callback reads the query string', () => {
    const query = inboundVoiceRequest('ringing').toString();
    expect(types(run(Buffer.alloc(0), ctx('voice', 'restcomm', query)))).toEqual(['CallInitiated', 'CallRinging']);
  });

  it('missing or "null" CallSid -> UnrecognizedWebhook keeping the account', () => {
    for (const body of [raw(`AccountSid=${ACCOUNT}&CallStatus=ringing&Direction=inbound`), raw(`CallSid=null&AccountSid=${ACCOUNT}&CallStatus=ringing`), raw('CallSid&CallStatus=ringing')]) {
      const events = run(body);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ type: 'UnrecognizedWebhook', legId: null, data: { reason: 'no CallSid in form body' } });
    }
    expect(run(raw(`AccountSid=${ACCOUNT}&CallStatus=ringing`))[0]!.accountId).toBe(ACCOUNT);
  });

  it('a JSON body is not a form -> UnrecognizedWebhook', () => {
    expect(types(run(raw(JSON.stringify({ CallSid: PARENT, CallStatus: 'ringing' }))))).toEqual(['UnrecognizedWebhook']);
  });

  it('unknown CallStatus -> UnrecognizedWebhook rather than a guess', () => {
    expect(run(inboundVoiceRequest('exploded'))).toEqual([expect.objectContaining({ type: 'UnrecognizedWebhook', legId: PARENT, accountId: ACCOUNT })]);
    expect(types(run(childProgress('teleported', 2)))).toEqual(['UnrecognizedWebhook']);
  });

  it('unknown Direction -> party.direction null', () => {
    const body = Buffer.from(inboundVoiceRequest('ringing').toString().replace('Direction=inbound', 'Direction=trunking-originating'));
    const events = run(body);
    expect(types(events)).toEqual(['CallRinging', 'CallInitiated']);
    expect(events[0]!.party).toEqual({ direction: null, from: '+12125550177', to: '+12125550100' });
  });

  it('a repeated name keeps its first value', () => {
    const events = run(raw(`${inboundVoiceRequest('ringing').toString()}&CallStatus=completed`));
    expect(types(events)).toEqual(['CallInitiated', 'CallRinging']);
  });

  it('a hostile __proto__ key is only a key', () => {
    expect(types(run(raw(`__proto__=x&constructor=y&${inboundVoiceRequest('ringing').toString()}`)))).toEqual(['CallInitiated', 'CallRinging']);
  });

  it('never throws on arbitrary bytes', () => {
    let seed = 7;
    const next = (): number => (seed = (seed * 1103515245 + 12345) & 0x7fffffff);
    for (let i = 0; i < 300; i++) {
      const bytes = Buffer.from(Array.from({ length: next() % 200 }, () => next() % 256));
      const events = run(bytes);
      expect(events.length).toBeGreaterThan(0);
    }
  });
});

describe('parseFormBody', () => {
  it('reads bare keys as empty strings and exposes every pair', () => {
    const parsed = parseFormBody(Buffer.from('A=1&RecordingUrl&PublicRecordingUrl&A=2&&B=x+y%2Bz&C=%G1'));
    expect(parsed.ok).toBe(true);
    if (!parsed.ok) return;
    expect({ ...parsed.fields }).toEqual({ A: '1', RecordingUrl: '', PublicRecordingUrl: '', B: 'x y+z', C: '%G1' });
    expect(parsed.pairs).toEqual([
      ['A', '1'],
      ['RecordingUrl', ''],
      ['PublicRecordingUrl', ''],
      ['A', '2'],
      ['B', 'x y+z'],
      ['C', '%G1'],
    ]);
  });

  it('decodes UTF-8, raw or percent-encoded', () => {
    const parsed = parseFormBody(Buffer.from('CallerName=J%C3%BCrgen&To=Zo\u00eb'));
    expect(parsed.ok && { ...parsed.fields }).toEqual({ CallerName: 'Jürgen', To: 'Zoë' });
  });

  it('rejects invalid UTF-8', () => {
    expect(parseFormBody(Buffer.from([0x41, 0x3d, 0xff]))).toEqual({ ok: false, reason: 'body is not valid UTF-8' });
    expect(parseFormBody(Buffer.from('A=%FF')).ok).toBe(false);
  });
});

describe('recordingIdOf', () => {
  it('prefers RecordingSid, else takes an RE id from the URL, else nothing', () => {
    expect(recordingIdOf('RE1', 'http://x/REc9b8ce99b8c8c616d753420c6f9abe79.wav')).toBe('RE1');
    expect(recordingIdOf(undefined, 'http://x/Recordings/REc9b8ce99b8c8c616d753420c6f9abe79.wav?dl=1')).toBe('REc9b8ce99b8c8c616d753420c6f9abe79');
    expect(recordingIdOf('null', 'http://x/recordings/abc.wav')).toBeUndefined();
  });
});
