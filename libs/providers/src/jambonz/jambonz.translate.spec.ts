import { describe, expect, it } from 'vitest';
import type { TranslatedEvent, TranslationContext } from '@lib/ledger';
import { verifyTimestampedHmac } from '../shared/timestamped-hmac.js';
import { detectJambonzHookKind, translateJambonzWebhook } from './jambonz.translate.js';

const ACC = 'a749fdf4-139c-426a-83af-461f6bdd3f5c';
const APP = '6dc3f73c-423a-4983-ad05-6d36abdcdde0';
const TRACE = '8c1f0e5b7d2a4c39b6e1f0a2d3c4b5a6';
const PARENT = '4754abdd-3a32-4c0c-91f5-8b1ed1740d2a';
const WINNER = '9ce83374-b6e8-4114-b7cb-eb196ad485b4';
const LOSER = '811ff1ff-a0b4-4d60-b1cd-d05102ddb484';
const API_LEG = '2f0d7c1e-5b8a-4e63-9a41-7c3e2b1d0f95';
const CONF = `conf:${ACC}:support-room`;

const ctxFor = (path = ''): TranslationContext => ({
  provider: 'jambonz',
  path,
  query: new URLSearchParams(),
  contentType: 'application/json',
});
const run = (payload: unknown, path = ''): TranslatedEvent[] =>
  translateJambonzWebhook(Buffer.from(JSON.stringify(payload)), ctxFor(path));
const shape = (events: TranslatedEvent[]) => events.map((e) => ({ type: e.type, legId: e.legId, data: e.data }));
/** The hook's own events, without the leg state its CallInfo also reports (tested on its own below). */
const hookRun = (payload: unknown, path = ''): TranslatedEvent[] =>
  run(payload, path).filter((e) => !['CallRinging', 'CallAnswered', 'CallCompleted'].includes(e.type));

// docs/providers.md, "jambonz requests" fixtures: full CallInfo key sets as jambonz serialises them.
const inboundTrying = {
  call_sid: PARENT,
  direction: 'inbound',
  from: '+14155550123',
  to: '+14155550199',
  call_id: '5d1e2b70-7c41-123e-8f2a-0a58a9feac02',
  sbc_callid: '9f3c1b2-4a7e1d09-2c3b-4f',
  sip_status: 100,
  sip_reason: 'Trying',
  call_status: 'trying',
  account_sid: ACC,
  trace_id: TRACE,
  application_sid: APP,
  fs_sip_address: '10.0.12.7:5070',
  originating_sip_ip: '203.0.113.17',
  originating_sip_trunk_name: 'carrier-a',
};
const inboundAnswered = { ...inboundTrying, sip_status: 200, sip_reason: 'OK', call_status: 'in-progress' };

const childRinging = {
  call_sid: WINNER,
  direction: 'outbound',
  from: '+14155550123',
  to: '+16175550142',
  call_id: '1f2a3b4c-7c41-123e-9e1b-0a58a9feac02',
  sip_status: 180,
  sip_reason: 'Ringing',
  call_status: 'ringing',
  caller_id: '+14155550123',
  account_sid: ACC,
  trace_id: TRACE,
  application_sid: APP,
  fs_sip_address: '10.0.12.7:5070',
  parent_call_sid: PARENT,
};
const childTrying = { ...childRinging, sip_status: 100, sip_reason: 'Trying', call_status: 'trying' };
const childEarlyMedia = { ...childRinging, sip_status: 183, sip_reason: 'Session Progress', call_status: 'early-media' };
const childAnswered = { ...childRinging, sip_status: 200, sip_reason: 'OK', call_status: 'in-progress' };
const childCompleted = { ...childAnswered, call_status: 'completed', duration: 212, headers: { x_reason: 'normal clearing' } };
const loserNoAnswer = {
  call_sid: LOSER,
  direction: 'outbound',
  from: '+14155550123',
  to: 'sip:alice@pbx.example.com',
  call_id: '2b3c4d5e-7c41-123e-9e1b-0a58a9feac02',
  sip_status: 487,
  sip_reason: 'Request Terminated',
  call_status: 'no-answer',
  caller_id: '+14155550123',
  account_sid: ACC,
  trace_id: TRACE,
  application_sid: APP,
  fs_sip_address: '10.0.12.7:5070',
  parent_call_sid: PARENT,
};

const dialAction = {
  ...inboundAnswered,
  customerData: { crmTicket: 'T-88213' },
  dial_call_status: 'completed',
  dial_sip_status: 200,
  dial_call_sid: WINNER,
  dial_sbc_callid: '7a1c2d3e-5f60-4b7a-8c9d-0e1f2a3b4c5d',
};

const amdHook = {
  ...inboundAnswered,
  type: 'amd_machine_detected',
  reason: 'long greeting',
  greeting: 'hi you have reached the sales team please leave a message after the tone',
  language: 'en-US',
};

const callHook = {
  call_sid: PARENT,
  direction: 'inbound',
  from: '+14155550123',
  to: '+14155550199',
  call_id: '5d1e2b70-7c41-123e-8f2a-0a58a9feac02',
  sip_status: 100,
  sip_reason: 'Trying',
  call_status: 'trying',
  account_sid: ACC,
  trace_id: TRACE,
  application_sid: APP,
  caller_name: 'Alice Example',
  local_sip_address: '10.0.12.7:5070',
  public_ip: '198.51.100.7',
  has_recording: false,
  service_provider_sid: '2708b1b3-2736-40ea-b502-c53d8396247f',
  originating_sip_ip: '203.0.113.17',
  originating_sip_trunk_name: 'carrier-a',
  sip: {
    headers: { 'X-CID': '9f3c1b2-4a7e1d09-2c3b-4f', 'Content-Type': 'application/sdp' },
    raw: 'INVITE sip:+14155550199@10.0.12.7:5070 SIP/2.0\r\n...',
    body: 'v=0\r\n...',
    method: 'INVITE',
    uri: 'sip:+14155550199@10.0.12.7:5070',
  },
  defaults: { synthesizer: { vendor: 'google', language: 'en-US' } },
  env_vars: { someVar: 'x' },
};

const conferenceHook = (event: string) => ({
  event,
  duration: 12.48,
  time: '2026-01-05T14:03:22.511Z',
  members: 2,
  conference_sid: CONF,
  friendly_name: 'support-room',
  ...childAnswered,
});

const parentParty = { direction: 'inbound', from: '+14155550123', to: '+14155550199' };
const childParty = { direction: 'outbound-dial', from: '+14155550123', to: '+16175550142' };

describe('translateJambonzWebhook (docs/providers.md, "What is read from each webhook kind")', () => {
  describe('call status hook', () => {
    it('trying on the inbound A-leg → CallInitiated(inbound) only', () => {
      const events = run(inboundTrying, 'status');
      expect(shape(events)).toEqual([
        { type: 'CallInitiated', legId: PARENT, data: { direction: 'inbound', from: '+14155550123', to: '+14155550199' } },
      ]);
      expect(events[0]).toMatchObject({ accountId: ACC, parentLegId: null, party: parentParty, occurredAt: null, providerSeq: null });
    });

    it('trying on a dial child → CallInitiated(outbound-dial) + ChildLegDialed on the parent leg', () => {
      const events = run(childTrying, 'status');
      expect(shape(events)).toEqual([
        { type: 'CallInitiated', legId: WINNER, data: childParty },
        { type: 'ChildLegDialed', legId: PARENT, data: { childLegId: WINNER, parentLegId: PARENT } },
      ]);
      expect(events[0]).toMatchObject({ accountId: ACC, parentLegId: PARENT, party: childParty });
      expect(events[1]).toMatchObject({ accountId: ACC, parentLegId: null, party: null });
    });

    it('trying on a REST-created call (outbound, no parent) → CallInitiated(outbound-api)', () => {
      const rest = { ...childTrying, call_sid: API_LEG, parent_call_sid: undefined };
      expect(shape(run(rest, 'status'))).toEqual([
        { type: 'CallInitiated', legId: API_LEG, data: { direction: 'outbound-api', from: '+14155550123', to: '+16175550142' } },
      ]);
    });

    it('ringing → CallRinging(earlyMedia false, sipStatus)', () => {
      const events = run(childRinging, 'status');
      expect(shape(events)).toEqual([{ type: 'CallRinging', legId: WINNER, data: { earlyMedia: false, sipStatus: 180 } }]);
      expect(events[0]!.parentLegId).toBe(PARENT);
    });

    it('early-media → CallRinging(earlyMedia true, sipStatus)', () => {
      expect(shape(run(childEarlyMedia, 'status'))).toEqual([
        { type: 'CallRinging', legId: WINNER, data: { earlyMedia: true, sipStatus: 183 } },
      ]);
    });

    it('in-progress → CallAnswered(sipStatus)', () => {
      expect(shape(run(childAnswered, 'status'))).toEqual([{ type: 'CallAnswered', legId: WINNER, data: { sipStatus: 200 } }]);
    });

    it('completed → CallCompleted(completed, durationSec, sipStatus, terminatedBy)', () => {
      expect(shape(run(childCompleted, 'status'))).toEqual([
        { type: 'CallCompleted', legId: WINNER, data: { outcome: 'completed', durationSec: 212, sipStatus: 200 } },
      ]);
      const aLeg = { ...inboundAnswered, call_status: 'completed', duration: 240, call_termination_by: 'caller' };
      expect(shape(run(aLeg, 'status'))).toEqual([
        { type: 'CallCompleted', legId: PARENT, data: { outcome: 'completed', durationSec: 240, sipStatus: 200, terminatedBy: 'caller' } },
      ]);
    });

    it.each([
      ['failed', 503, 'failed'],
      ['busy', 486, 'busy'],
      ['no-answer', 408, 'no-answer'],
    ])('%s (%i) → CallCompleted(%s, sipStatus), no endReason', (callStatus, sip, outcome) => {
      const events = run({ ...childRinging, call_status: callStatus, sip_status: sip, sip_reason: 'x' }, 'status');
      expect(shape(events)).toEqual([{ type: 'CallCompleted', legId: WINNER, data: { outcome, sipStatus: sip } }]);
    });

    it('no-answer 487 on a child → endReason canceled-487 (winner/loser is decided by projections)', () => {
      const events = run(loserNoAnswer, 'status');
      expect(shape(events)).toEqual([
        { type: 'CallCompleted', legId: LOSER, data: { outcome: 'no-answer', endReason: 'canceled-487', sipStatus: 487 } },
      ]);
      expect(events[0]).toMatchObject({ parentLegId: PARENT, party: { direction: 'outbound-dial', to: 'sip:alice@pbx.example.com' } });
    });

    it('no-answer 487 on the inbound A-leg (caller cancel) → no endReason, terminatedBy caller', () => {
      const cancel = { ...inboundTrying, call_status: 'no-answer', sip_status: 487, sip_reason: 'Request Terminated', call_termination_by: 'caller' };
      expect(shape(run(cancel, 'status'))).toEqual([
        { type: 'CallCompleted', legId: PARENT, data: { outcome: 'no-answer', sipStatus: 487, terminatedBy: 'caller' } },
      ]);
    });

    it('queued → AppHook(queued)', () => {
      expect(shape(run({ ...inboundTrying, call_status: 'queued' }, 'status'))).toEqual([
        { type: 'AppHook', legId: PARENT, data: { kind: 'queued' } },
      ]);
    });

    it('an unknown call_status → UnrecognizedWebhook on the leg', () => {
      const events = run({ ...inboundTrying, call_status: 'teleported' }, 'status');
      expect(shape(events)).toEqual([
        { type: 'UnrecognizedWebhook', legId: PARENT, data: { reason: 'unsupported jambonz call_status "teleported"' } },
      ]);
      expect(events[0]!.accountId).toBe(ACC);
    });
  });

  describe('call_hook (session:new)', () => {
    it('→ CallInitiated only, even though call_status is present', () => {
      const events = run(callHook, 'call-hook');
      expect(shape(events)).toEqual([
        { type: 'CallInitiated', legId: PARENT, data: { direction: 'inbound', from: '+14155550123', to: '+14155550199' } },
      ]);
      expect(events[0]).toMatchObject({ accountId: ACC, parentLegId: null, party: parentParty });
    });

    it('is recognised from its keys without a path hint', () => {
      expect(shape(run(callHook, ''))).toEqual(shape(run(callHook, 'call-hook')));
      // With call_status in-progress, a status hook would be CallAnswered: the call_hook must not advance state.
      expect(run({ ...callHook, call_status: 'in-progress' }).map((e) => e.type)).toEqual(['CallInitiated']);
    });
  });

  describe('dial actionHook', () => {
    it('→ DialCompleted on the parent + ChildLegDialed(parent → dial_call_sid)', () => {
      const events = hookRun(dialAction, 'dial-action');
      expect(shape(events)).toEqual([
        { type: 'DialCompleted', legId: PARENT, data: { childLegId: WINNER, outcome: 'completed', sipStatus: 200 } },
        { type: 'ChildLegDialed', legId: PARENT, data: { childLegId: WINNER, parentLegId: PARENT } },
      ]);
      expect(events[0]).toMatchObject({ accountId: ACC, parentLegId: null, party: parentParty });
    });

    it('reads the documented dial_status when dial_call_status is absent (docs/providers.md, "jambonz quirks")', () => {
      const { dial_call_status: _omit, ...rest } = dialAction;
      const events = hookRun({ ...rest, dial_status: 'busy', dial_sip_status: 486 }, 'dial-action');
      expect(shape(events)[0]).toEqual({ type: 'DialCompleted', legId: PARENT, data: { childLegId: WINNER, outcome: 'busy', sipStatus: 486 } });
    });

    it('dial_call_status wins over dial_status', () => {
      const events = hookRun({ ...dialAction, dial_status: 'failed' }, 'dial-action');
      expect(events[0]!.data).toMatchObject({ outcome: 'completed' });
    });

    it('without dial_call_sid (nobody answered) → DialCompleted only, no link', () => {
      const { dial_call_sid: _omit, ...rest } = dialAction;
      expect(shape(hookRun({ ...rest, dial_call_status: 'no-answer', dial_sip_status: 487 }, 'dial-action'))).toEqual([
        { type: 'DialCompleted', legId: PARENT, data: { outcome: 'no-answer', sipStatus: 487 } },
      ]);
    });

    it.each([
      ['failed', 'failed'],
      ['canceled', 'canceled'],
      ['queued', 'unknown'],
      ['', 'unknown'],
    ])('dial_call_status "%s" → outcome %s', (status, outcome) => {
      expect(hookRun({ ...dialAction, dial_call_status: status }, 'dial-action')[0]!.data).toMatchObject({ outcome });
    });
  });

  describe('AMD hook', () => {
    it('amd_machine_detected → MachineDetected(machine) on the payload call_sid (the parent)', () => {
      const events = hookRun(amdHook, 'amd');
      expect(shape(events)).toEqual([
        {
          type: 'MachineDetected',
          legId: PARENT,
          data: { result: 'machine', detail: 'long greeting: hi you have reached the sales team please leave a message after the tone' },
        },
      ]);
      expect(events[0]!.accountId).toBe(ACC);
    });

    it.each([
      ['amd_human_detected', { reason: 'short greeting', greeting: 'hello' }, 'human', 'short greeting: hello'],
      ['amd_human_detected', { reason: 'hint', hint: 'how can i help' }, 'human', 'hint: how can i help'],
      ['amd_machine_stopped_speaking', {}, 'machine', 'amd_machine_stopped_speaking'],
      ['amd_tone_detected', { frequency: 1000, variance: 3.2 }, 'beep', 'amd_tone_detected'],
      ['amd_no_speech_detected', {}, 'unknown', 'amd_no_speech_detected'],
      ['amd_decision_timeout', {}, 'unknown', 'amd_decision_timeout'],
    ])('%s → MachineDetected(%s)', (type, extra, result, detail) => {
      const payload = { ...inboundAnswered, type, ...extra };
      expect(shape(hookRun(payload, 'amd'))).toEqual([{ type: 'MachineDetected', legId: PARENT, data: { result, detail } }]);
    });

    it.each(['amd_error', 'amd_stopped'])('%s → AppHook', (type) => {
      expect(shape(hookRun({ ...inboundAnswered, type, error: 'stt failure' }, 'amd'))).toEqual([
        { type: 'AppHook', legId: PARENT, data: { kind: type } },
      ]);
    });

    it('an unknown amd_ type → UnrecognizedWebhook', () => {
      expect(shape(hookRun({ ...inboundAnswered, type: 'amd_future_thing' }, 'amd'))).toEqual([
        { type: 'UnrecognizedWebhook', legId: PARENT, data: { reason: 'unsupported jambonz AMD type "amd_future_thing"' } },
      ]);
    });
  });

  it('dial dtmfHook → DtmfReceived(dial-capture) on the leg that pressed', () => {
    const events = hookRun({ ...childAnswered, dtmf: '*2' }, 'dtmf');
    expect(shape(events)).toEqual([{ type: 'DtmfReceived', legId: WINNER, data: { digits: '*2', source: 'dial-capture' } }]);
    expect(events[0]!.parentLegId).toBe(PARENT);
  });

  describe('gather actionHook', () => {
    it('dtmfDetected → DtmfReceived(gather, reason)', () => {
      expect(shape(hookRun({ ...inboundAnswered, reason: 'dtmfDetected', digits: '1234' }, 'gather'))).toEqual([
        { type: 'DtmfReceived', legId: PARENT, data: { digits: '1234', reason: 'dtmfDetected', source: 'gather' } },
      ]);
    });

    it('speechDetected → SpeechRecognized from speech.alternatives[0]', () => {
      const speech = {
        language_code: 'en-US',
        channel_tag: 1,
        is_final: true,
        alternatives: [
          { confidence: 0.91, transcript: 'talk to sales' },
          { confidence: 0.4, transcript: 'walk to sails' },
        ],
      };
      expect(shape(hookRun({ ...inboundAnswered, reason: 'speechDetected', speech }, 'gather'))).toEqual([
        { type: 'SpeechRecognized', legId: PARENT, data: { text: 'talk to sales', confidence: 0.91 } },
      ]);
    });

    it('speechDetected with a plain string speech → SpeechRecognized(text)', () => {
      expect(shape(hookRun({ ...inboundAnswered, reason: 'speechDetected', speech: 'billing' }, 'gather'))).toEqual([
        { type: 'SpeechRecognized', legId: PARENT, data: { text: 'billing' } },
      ]);
    });

    it.each(['timeout', 'error', 'stt-low-confidence'])('%s → AppHook', (reason) => {
      expect(shape(hookRun({ ...inboundAnswered, reason }, 'gather'))).toEqual([
        { type: 'AppHook', legId: PARENT, data: { kind: `gather:${reason}` } },
      ]);
    });
  });

  describe('conference statusHook', () => {
    it('join → ConferenceJoined(conferenceId, members), occurredAt = time', () => {
      const events = hookRun(conferenceHook('join'), 'conference');
      expect(shape(events)).toEqual([{ type: 'ConferenceJoined', legId: WINNER, data: { conferenceId: CONF, members: 2 } }]);
      expect(events[0]).toMatchObject({ occurredAt: '2026-01-05T14:03:22.511Z', accountId: ACC, parentLegId: PARENT });
    });

    it('leave → ConferenceLeft', () => {
      expect(shape(hookRun({ ...conferenceHook('leave'), members: 1 }, 'conference'))).toEqual([
        { type: 'ConferenceLeft', legId: WINNER, data: { conferenceId: CONF, members: 1 } },
      ]);
    });

    it.each(['start', 'end'])('%s → ConferenceStatusChanged', (event) => {
      const events = hookRun(conferenceHook(event), 'conference');
      expect(shape(events)).toEqual([{ type: 'ConferenceStatusChanged', legId: WINNER, data: { conferenceId: CONF, status: event } }]);
      expect(events[0]!.occurredAt).toBe('2026-01-05T14:03:22.511Z');
    });

    it.each(['start-talking', 'stop-talking'])('%s → AppHook', (event) => {
      expect(shape(hookRun(conferenceHook(event), 'conference'))).toEqual([
        { type: 'AppHook', legId: WINNER, data: { kind: `conference:${event}` } },
      ]);
    });

    it('an unparseable time leaves occurredAt null', () => {
      expect(hookRun({ ...conferenceHook('join'), time: 'yesterday' }, 'conference')[0]!.occurredAt).toBeNull();
    });
  });

  describe('anything else → UnrecognizedWebhook', () => {
    it('a CallInfo-less object with a call_sid', () => {
      expect(shape(run({ call_sid: PARENT, account_sid: ACC, hello: 'world' }, 'status'))).toEqual([
        {
          type: 'UnrecognizedWebhook',
          legId: PARENT,
          data: {
            reason: 'not a known jambonz hook: no call_status, dial_call_status, type amd_*, dtmf, event+conference_sid or gather reason',
          },
        },
      ]);
    });

    it('an unknown conference event', () => {
      expect(run(conferenceHook('mute'), 'conference')[0]!.data).toEqual({ reason: 'unsupported jambonz conference event "mute"' });
    });

    it('a known kind whose field has the wrong type', () => {
      const events = run({ ...childRinging, from: { user: 'x' } }, 'status');
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ type: 'UnrecognizedWebhook', legId: WINNER, accountId: ACC });
      expect((events[0]!.data as { reason: string }).reason).toMatch(/^payload does not match jambonz status hook: from:/);
    });
  });

  describe('robustness', () => {
    it('out-of-order status hooks still each translate on their own (no state in the translator)', () => {
      const inOrder = [childTrying, childRinging, childAnswered, childCompleted].map((p) => shape(run(p, 'status')));
      const shuffled = [childCompleted, childAnswered, childRinging, childTrying].map((p) => shape(run(p, 'status')));
      expect(shuffled).toEqual([...inOrder].reverse());
      expect(shuffled.map((s) => s.map((e) => e.type))).toEqual([
        ['CallCompleted'],
        ['CallAnswered'],
        ['CallRinging'],
        ['CallInitiated', 'ChildLegDialed'],
      ]);
    });

    it('camelCase customerData is tolerated and ignored, even when it mimics hook keys', () => {
      const noisy = { ...childAnswered, customerData: { crmTicket: 'T-88213', dial_call_status: 'busy', dtmf: '9', nested: { callSid: 'x' } } };
      expect(shape(run(noisy, 'status'))).toEqual(shape(run(childAnswered, 'status')));
      const events = run(dialAction, 'dial-action');
      expect(JSON.stringify(events)).not.toContain('crmTicket');
    });

    it('numbers sent as strings are read as numbers', () => {
      expect(shape(run({ ...childCompleted, sip_status: '200', duration: '212' }, 'status'))).toEqual([
        { type: 'CallCompleted', legId: WINNER, data: { outcome: 'completed', durationSec: 212, sipStatus: 200 } },
      ]);
      expect(run({ ...dialAction, dial_sip_status: '200' }, 'dial-action')[0]!.data).toMatchObject({ sipStatus: 200 });
      expect(run({ ...conferenceHook('join'), members: '3' }, 'conference')[0]!.data).toMatchObject({ members: 3 });
      expect(run({ ...childAnswered, dtmf: 12 }, 'dtmf')[0]!.data).toMatchObject({ digits: '12' });
      expect(run({ ...loserNoAnswer, sip_status: '487' }, 'status')[0]!.data).toMatchObject({ endReason: 'canceled-487', sipStatus: 487 });
    });

    it.each([
      ['invalid JSON', Buffer.from('{"call_sid": '), /^body is not valid JSON/],
      ['an array body', Buffer.from(JSON.stringify([inboundTrying])), /^body is JSON but not an object$/],
      ['an empty body', Buffer.alloc(0), /^empty body$/],
      ['invalid UTF-8', Buffer.from([0x7b, 0xff, 0xfe, 0x7d]), /^body is not valid UTF-8$/],
      ['a JSON string', Buffer.from('"call_status"'), /^body is JSON but not an object$/],
    ])('%s → a single UnrecognizedWebhook with the reason', (_label, body, reason) => {
      const events = translateJambonzWebhook(body, ctxFor('status'));
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ type: 'UnrecognizedWebhook', legId: null, accountId: null });
      expect((events[0]!.data as { reason: string }).reason).toMatch(reason);
    });

    it('missing call_sid → a single UnrecognizedWebhook keeping the account', () => {
      const { call_sid: _omit, ...rest } = childRinging;
      expect(run(rest, 'status')).toEqual([
        {
          type: 'UnrecognizedWebhook',
          legId: null,
          accountId: ACC,
          parentLegId: null,
          occurredAt: null,
          providerSeq: null,
          party: null,
          data: { reason: 'jambonz status webhook without call_sid' },
        },
      ]);
    });
  });

  describe('path hint', () => {
    it('does not override a payload that names its hook', () => {
      // Each hook also reports its leg's own call_status (in-progress): CallAnswered (docs/providers.md, "What is read from each webhook kind").
      expect(run(dialAction, 'status').map((e) => e.type)).toEqual(['DialCompleted', 'ChildLegDialed', 'CallAnswered']);
      expect(run(amdHook, 'status').map((e) => e.type)).toEqual(['MachineDetected', 'CallAnswered']);
      expect(run(conferenceHook('join'), 'amd').map((e) => e.type)).toEqual(['ConferenceJoined', 'CallAnswered']);
      expect(run(childAnswered, 'call-hook').map((e) => e.type)).toEqual(['CallAnswered']);
    });

    it('breaks the tie when the payload fits two kinds', () => {
      // A CallInfo carrying both call_hook keys and call_status: only the sub-path can say which hook it was.
      const ambiguous = { ...childAnswered, caller_name: 'Bob', local_sip_address: '10.0.12.7:5070' };
      expect(run(ambiguous, '').map((e) => e.type)).toEqual(['CallInitiated']);
      expect(run(ambiguous, 'call-hook').map((e) => e.type)).toEqual(['CallInitiated']);
      expect(run(ambiguous, 'status').map((e) => e.type)).toEqual(['CallAnswered']);
      expect(run(ambiguous, 'jz/status/').map((e) => e.type)).toEqual(['CallAnswered']);
      // A dtmfHook body that also carries a gather-like reason.
      const both = { ...childAnswered, dtmf: '*2', reason: 'dtmfDetected', digits: '*2' };
      expect(detectJambonzHookKind(both, '')).toBe('dtmf');
      expect(detectJambonzHookKind(both, 'gather')).toBe('gather');
    });
  });

  describe('Jambonz-Signature (docs/providers.md, "Signatures" test vector)', () => {
    const body = Buffer.from(
      '{"call_sid":"4754abdd-3a32-4c0c-91f5-8b1ed1740d2a","direction":"inbound","call_status":"completed","duration":37}',
    );
    const header = 't=1767225600,v1=3c7931c83b208849a08ae4be235b56ff5394175bbee79181519bfaa4b0bdca74';

    it('verifies with the account webhook secret', () => {
      expect(verifyTimestampedHmac(header, body, ['whsec_example_4f2a'], 1767225600)).toEqual({
        ok: true,
        timestamp: new Date(1767225600 * 1000),
      });
    });

    it('fails when one byte of the body changes', () => {
      const tampered = Buffer.from(body);
      tampered[tampered.indexOf('37')] = '4'.charCodeAt(0);
      expect(verifyTimestampedHmac(header, tampered, ['whsec_example_4f2a'], 1767225600)).toEqual({
        ok: false,
        reason: 'signature does not match',
      });
    });

    it('the vector body itself translates to CallCompleted', () => {
      expect(shape(translateJambonzWebhook(body, ctxFor('status')))).toEqual([
        { type: 'CallCompleted', legId: PARENT, data: { outcome: 'completed', durationSec: 37 } },
      ]);
    });
  });
});

describe('the leg state every hook carries (docs/providers.md, "What is read from each webhook kind")', () => {
  // jambonz-feature-server lib/tasks/task.js performAction/performHook send `cs.callInfo` (the whole CallInfo, with
  // call_status, sip_status, duration, call_termination_by) with every action, AMD and conference hook.
  it('a dial actionHook answers the caller it reports on; the child SIP code stays in the DialCompleted', () => {
    const events = run(dialAction, 'dial-action');
    expect(shape(events)).toEqual([
      { type: 'DialCompleted', legId: PARENT, data: { childLegId: WINNER, outcome: 'completed', sipStatus: 200 } },
      { type: 'ChildLegDialed', legId: PARENT, data: { childLegId: WINNER, parentLegId: PARENT } },
      { type: 'CallAnswered', legId: PARENT, data: { sipStatus: 200 } },
    ]);
  });

  it('an AMD, gather or conference hook of a completed leg ends it, with duration and who hung up', () => {
    const done = { ...inboundAnswered, call_status: 'completed', duration: 31, call_termination_by: 'caller' };
    for (const payload of [{ ...done, type: 'amd_human_detected', reason: 'short greeting' }, { ...done, reason: 'timeout' }, { ...done, event: 'leave', conference_sid: CONF, time: '2026-01-05T14:03:22.511Z', members: 0 }]) {
      expect(run(payload).at(-1)).toMatchObject({ type: 'CallCompleted', legId: PARENT, data: { outcome: 'completed', durationSec: 31, terminatedBy: 'caller' } });
    }
  });

  it('a hook of a leg still trying adds nothing', () => {
    expect(run({ ...inboundTrying, type: 'amd_human_detected' }).map((e) => e.type)).toEqual(['MachineDetected']);
  });
});
