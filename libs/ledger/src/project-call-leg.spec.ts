import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { CallEventDataMap, CallEventType, Provider } from './call-leg.events.js';
import type { CallLegRow, LedgerEvent } from './call-leg.js';
import { canonicalEvents, projectCallLeg } from './project-call-leg.js';
import { callScenarioArb, legInputsOf, type CallScenario } from './testing/call-scenarios.js';

const T0 = Date.UTC(2024, 0, 1, 12, 0, 0);
const at = (sec: number) => new Date(T0 + sec * 1000).toISOString();
let counter = 0;

type Opts = Partial<Omit<LedgerEvent, 'type' | 'data' | 'legId'>> & { t?: number };
const ev = <K extends CallEventType>(type: K, legId: string, data: CallEventDataMap[K], opts: Opts = {}): LedgerEvent => {
  counter += 1;
  const { t = 0, ...rest } = opts;
  return {
    position: String(counter),
    eventId: `ev-${counter}`,
    type,
    data,
    provider: 'jambonz',
    legId,
    accountId: 'AC1',
    parentLegId: null,
    party: null,
    providerSeq: null,
    occurredAt: null,
    sentAt: at(t),
    receivedAt: at(t + 0.2),
    ...rest,
  } as LedgerEvent;
};

const project = (callId: string, own: LedgerEvent[], related: LedgerEvent[] = [], provider: Provider = 'jambonz') =>
  projectCallLeg({ provider, callId, own, related });
const must = (row: CallLegRow | null): CallLegRow => {
  expect(row).not.toBeNull();
  return row!;
};
const withProvider = (provider: Provider, events: LedgerEvent[]) => events.map((e) => ({ ...e, provider }));

describe('projectCallLeg: existence and bookkeeping', () => {
  it('returns null without any own event or link naming the leg', () => {
    expect(project('A', [])).toBeNull();
    const parentAmd = ev('MachineDetected', 'P', { result: 'machine' });
    expect(project('A', [], [parentAmd])).toBeNull();
  });

  it('a leg with any own event exists, even an AppHook only', () => {
    const row = must(project('A', [ev('AppHook', 'A', { kind: 'redirect' }, { t: 3 })]));
    expect(row).toMatchObject({ status: 'initiated', startedAt: at(3), eventCount: 1, final: false });
  });

  it('a child known only from the parent DialCompleted exists and ends with it', () => {
    const dial = ev('DialCompleted', 'P', { childLegId: 'C', outcome: 'completed', durationSec: 42, ringDurationSec: 7 }, { provider: 'restcomm', t: 60 });
    const row = must(project('C', [], [dial], 'restcomm'));
    expect(row).toMatchObject({ parentCallId: 'P', status: 'completed', talkDurationSec: 42, talkDurationSource: 'provider', ringDurationSec: 7, endedAt: at(60), final: true, eventCount: 0 });
  });

  it('counts duplicates once and compares positions as integers', () => {
    const a = ev('CallInitiated', 'A', { direction: 'inbound', from: '+1', to: '+2' }, { position: '9' });
    const b = ev('CallRinging', 'A', {}, { position: '10', t: 1 });
    const row = must(project('A', [a, b, a, { ...b }, b]));
    expect(row.eventCount).toBe(2);
    expect(row.lastPosition).toBe('10');
  });

  it('canonical order: time, then status rank, then providerSeq, then eventId', () => {
    const x = ev('CallCompleted', 'A', { outcome: 'completed' }, { t: 5, eventId: 'a' });
    const y = ev('CallAnswered', 'A', {}, { t: 5, eventId: 'b' });
    const z = ev('CallInitiated', 'A', { direction: null, from: null, to: null }, { t: 6, eventId: 'c', occurredAt: at(1) });
    expect(canonicalEvents([x, y, z, x]).map((e) => e.eventId)).toEqual(['c', 'b', 'a']);
  });
});

describe('projectCallLeg: status', () => {
  it('moves forward by rank only, whatever the arrival order', () => {
    const init = ev('CallInitiated', 'A', { direction: 'outbound-api', from: '+1', to: '+2' }, { t: 0 });
    const ringing = ev('CallRinging', 'A', { sipStatus: 180 }, { t: 9 }); // jambonz: ringing hook raced the answer
    const answered = ev('CallAnswered', 'A', { sipStatus: 200 }, { t: 4 });
    expect(must(project('A', [ringing, answered, init])).status).toBe('in-progress');
    const done = ev('CallCompleted', 'A', { outcome: 'completed', durationSec: 30 }, { t: 34 });
    const lateInit = ev('CallInitiated', 'A', { direction: 'outbound-api', from: '+1', to: '+2' }, { t: 90 });
    expect(must(project('A', [done, lateInit, ringing, init, answered])).status).toBe('completed');
  });

  it('late events only enrich a terminal leg', () => {
    const base = [
      ev('CallInitiated', 'A', { direction: 'inbound', from: '+1', to: '+2' }, { t: 0 }),
      ev('CallAnswered', 'A', {}, { t: 2 }),
      ev('CallCompleted', 'A', { outcome: 'completed', durationSec: 10 }, { t: 12 }),
    ];
    const late = [
      ev('CallRinging', 'A', { sipStatus: 183 }, { t: 20 }),
      ev('RecordingAvailable', 'A', { url: 'https://x/r1', scope: 'call', durationSec: 10 }, { t: 30 }),
    ];
    const before = must(project('A', base));
    const after = must(project('A', [...late, ...base]));
    expect(after.status).toBe('completed');
    expect(after.endedAt).toBe(before.endedAt);
    expect(after.talkDurationSec).toBe(10);
    expect(after.recordings).toHaveLength(1);
    expect(after.sipStatus).toBe(183);
  });

  it('answered then ended is completed even if the end says otherwise', () => {
    const row = must(project('A', [ev('CallAnswered', 'A', {}, { t: 1 }), ev('CallCompleted', 'A', { outcome: 'unknown' }, { t: 5 })]));
    expect(row.status).toBe('completed');
  });

  describe('Restcomm completed-for-unanswered (unanswered-unknown)', () => {
    const child = () =>
      withProvider('restcomm', [
        ev('CallInitiated', 'C', { direction: 'outbound-dial', from: '+1', to: '+3' }, { t: 0, parentLegId: 'P', providerSeq: 0 }),
        ev('CallRinging', 'C', {}, { t: 1, parentLegId: 'P', providerSeq: 1 }),
        ev('CallCompleted', 'C', { outcome: 'unanswered-unknown', durationSec: 0 }, { t: 20, parentLegId: 'P', providerSeq: 3 }),
      ]);

    it('is resolved by the parent DialCompleted', () => {
      const dial = ev('DialCompleted', 'P', { childLegId: 'C', outcome: 'busy', ringDurationSec: 19 }, { t: 21, provider: 'restcomm' });
      const row = must(project('C', child(), [dial], 'restcomm'));
      expect(row).toMatchObject({ status: 'busy', final: true, ringDurationSec: 19, ringDurationSource: 'provider', talkDurationSec: 0 });
    });

    it('falls back to no-answer when it rang, failed when not, and is not final while a parent may still resolve it', () => {
      const rang = must(project('C', child(), [], 'restcomm'));
      expect(rang).toMatchObject({ status: 'no-answer', final: false, ringDurationSec: 20, ringDurationSource: 'derived' });
      const noRing = must(project('C', child().filter((e) => e.type !== 'CallRinging'), [], 'restcomm'));
      expect(noRing.status).toBe('failed');
      const root = child().map((e) => ({ ...e, parentLegId: null }));
      expect(must(project('C', root, [], 'restcomm')).final).toBe(true);
    });

    it('parent DialCompleted beats the child outcome for Restcomm, the child outcome wins for FreeClimb', () => {
      const own = (p: Provider) => withProvider(p, [ev('CallCompleted', 'C', { outcome: 'no-answer' }, { t: 20, parentLegId: 'P' })]);
      const dial = (p: Provider) => ev('DialCompleted', 'P', { childLegId: 'C', outcome: 'busy' }, { t: 21, provider: p });
      expect(must(project('C', own('restcomm'), [dial('restcomm')], 'restcomm')).status).toBe('busy');
      expect(must(project('C', own('freeclimb'), [dial('freeclimb')], 'freeclimb')).status).toBe('no-answer');
    });
  });

  it('never turns a simultaneous-ring loser into completed', () => {
    const loser = [
      ev('CallInitiated', 'L', { direction: 'outbound-dial', from: '+1', to: '+4' }, { t: 0, parentLegId: 'P' }),
      ev('CallRinging', 'L', { sipStatus: 180 }, { t: 1, parentLegId: 'P' }),
      ev('CallCompleted', 'L', { outcome: 'no-answer', sipStatus: 487, endReason: 'canceled-487' }, { t: 8, parentLegId: 'P' }),
    ];
    const bogus = ev('DialCompleted', 'P', { childLegId: 'L', outcome: 'completed', sipStatus: 200 }, { t: 30 });
    const row = must(project('L', loser, [bogus]));
    expect(row).toMatchObject({ status: 'no-answer', endReason: 'canceled-487', talkDurationSec: 0, final: true });
    const twilioLoser = withProvider('twilio', [ev('CallCompleted', 'L', { outcome: 'canceled' }, { t: 8, parentLegId: 'P' })]);
    const twilioDial = ev('DialCompleted', 'P', { childLegId: 'L', outcome: 'completed' }, { t: 30, provider: 'twilio' });
    expect(must(project('L', twilioLoser, [twilioDial], 'twilio')).status).toBe('canceled');
  });
});

describe('projectCallLeg: times and durations', () => {
  const answered = (durationSec?: number) => [
    ev('CallInitiated', 'A', { direction: 'outbound-api', from: '+1', to: '+2' }, { t: 0 }),
    ev('CallAnswered', 'A', {}, { t: 10.5 }),
    ev('CallCompleted', 'A', durationSec === undefined ? { outcome: 'completed' } : { outcome: 'completed', durationSec }, { t: 75.25 }),
  ];

  it('prefers the provider duration over the derived one', () => {
    const row = must(project('A', answered(64)));
    expect(row).toMatchObject({ talkDurationSec: 64, talkDurationSource: 'provider', final: true });
  });

  it('derives talk = ended - answered and ring = answered - started, rounded to 3 decimals', () => {
    const row = must(project('A', withProvider('restcomm', answered()), [], 'restcomm'));
    expect(row).toMatchObject({
      startedAt: at(0), answeredAt: at(10.5), endedAt: at(75.25),
      talkDurationSec: 64.75, talkDurationSource: 'derived', ringDurationSec: 10.5, ringDurationSource: 'derived', final: false,
    });
  });

  it('uses the parent DialCompleted duration when the child reports none', () => {
    const dial = ev('DialCompleted', 'P', { childLegId: 'A', outcome: 'completed', durationSec: 63.1234 }, { t: 80 });
    expect(must(project('A', answered(), [dial]))).toMatchObject({ talkDurationSec: 63.123, talkDurationSource: 'provider', final: true });
  });

  it('never goes negative (clock skew) and unanswered legs talk 0', () => {
    const skewed = [ev('CallAnswered', 'A', {}, { t: 10 }), ev('CallCompleted', 'A', { outcome: 'completed' }, { t: 9 }), ev('CallInitiated', 'A', { direction: null, from: null, to: null }, { t: 12 })];
    expect(must(project('A', skewed))).toMatchObject({ talkDurationSec: 0, ringDurationSec: 0 });
    const busy = [ev('CallInitiated', 'A', { direction: null, from: null, to: null }, { t: 0 }), ev('CallCompleted', 'A', { outcome: 'busy', sipStatus: 486 }, { t: 3 })];
    expect(must(project('A', busy))).toMatchObject({ status: 'busy', talkDurationSec: 0, talkDurationSource: 'derived', ringDurationSec: 3, endedAt: at(3), final: true });
  });

  it('leaves durations null while the leg is not over', () => {
    const row = must(project('A', answered().slice(0, 2)));
    expect(row).toMatchObject({ status: 'in-progress', talkDurationSec: null, talkDurationSource: null, ringDurationSec: 10.5, endedAt: null });
  });

  it('startedAt prefers CallInitiated, answeredAt/endedAt take the earliest', () => {
    const row = must(
      project('A', [
        ev('AppHook', 'A', { kind: 'x' }, { t: 1 }),
        ev('CallInitiated', 'A', { direction: null, from: null, to: null }, { t: 2 }),
        ev('CallAnswered', 'A', {}, { t: 6 }),
        ev('CallAnswered', 'A', {}, { t: 5 }),
        ev('CallCompleted', 'A', { outcome: 'completed' }, { t: 9 }),
        ev('CallCompleted', 'A', { outcome: 'completed' }, { t: 8, occurredAt: at(7) }),
      ]),
    );
    expect(row).toMatchObject({ startedAt: at(2), answeredAt: at(5), endedAt: at(7) });
  });
});

describe('projectCallLeg: AMD', () => {
  const winnerChild = [
    ev('CallInitiated', 'C', { direction: 'outbound-dial', from: '+1', to: '+3' }, { t: 10, parentLegId: 'P' }),
    ev('CallAnswered', 'C', { sipStatus: 200 }, { t: 15, parentLegId: 'P' }),
    ev('CallCompleted', 'C', { outcome: 'completed', durationSec: 20 }, { t: 35, parentLegId: 'P' }),
  ];
  const parentAmd = ev('MachineDetected', 'P', { result: 'beep', detail: 'amd_tone_detected' }, { t: 17 });

  it('attaches the jambonz parent AMD to the dial winner', () => {
    expect(must(project('C', winnerChild, [parentAmd])).answeredBy).toBe('machine');
    const dial = ev('DialCompleted', 'P', { childLegId: 'C', outcome: 'completed' }, { t: 36 });
    expect(must(project('C', winnerChild, [parentAmd, dial])).answeredBy).toBe('machine');
  });

  it('does not attach it to a loser, to a parent-level AMD before the dial, or from another leg', () => {
    const loser = [
      ev('CallInitiated', 'L', { direction: 'outbound-dial', from: '+1', to: '+4' }, { t: 10, parentLegId: 'P' }),
      ev('CallCompleted', 'L', { outcome: 'no-answer', sipStatus: 487, endReason: 'canceled-487' }, { t: 15, parentLegId: 'P' }),
    ];
    expect(must(project('L', loser, [parentAmd])).answeredBy).toBeNull();
    const early = ev('MachineDetected', 'P', { result: 'human' }, { t: 5 });
    expect(must(project('C', winnerChild, [early])).answeredBy).toBeNull();
    const elsewhere = ev('MachineDetected', 'X', { result: 'human' }, { t: 17 });
    expect(must(project('C', winnerChild, [elsewhere])).answeredBy).toBeNull();
  });

  it('keeps the jambonz parent own AMD only before it started dialling', () => {
    const parent = [
      ev('CallInitiated', 'P', { direction: 'outbound-api', from: '+1', to: '+2' }, { t: 0 }),
      ev('CallAnswered', 'P', {}, { t: 3 }),
      ev('ChildLegDialed', 'P', { childLegId: 'C', parentLegId: 'P' }, { t: 10 }),
      parentAmd,
    ];
    expect(must(project('P', parent)).answeredBy).toBeNull();
    expect(must(project('P', [...parent, ev('MachineDetected', 'P', { result: 'human' }, { t: 5 })])).answeredBy).toBe('human');
  });

  it('reads FreeClimb machineDetected on the child itself; machine > fax > human, unknown ignored', () => {
    const own = withProvider('freeclimb', [
      ...winnerChild,
      ev('MachineDetected', 'C', { result: 'unknown' }, { t: 16 }),
    ]);
    expect(must(project('C', own, [], 'freeclimb')).answeredBy).toBeNull();
    const fax = ev('MachineDetected', 'C', { result: 'fax', detail: 'fax modem' }, { t: 16, provider: 'freeclimb' });
    const machine = ev('MachineDetected', 'C', { result: 'machine', detail: 'answering machine' }, { t: 17, provider: 'freeclimb' });
    const human = ev('MachineDetected', 'C', { result: 'human' }, { t: 18, provider: 'freeclimb' });
    expect(must(project('C', [...own, human, fax], [], 'freeclimb')).answeredBy).toBe('fax');
    expect(must(project('C', [...own, human, machine, fax], [], 'freeclimb')).answeredBy).toBe('machine');
  });
});

describe('projectCallLeg: links, party, recordings, conferences', () => {
  it('flags conflicting parent assertions and keeps the canonically first', () => {
    const own = [ev('CallInitiated', 'C', { direction: 'outbound-dial', from: null, to: null }, { t: 1, parentLegId: 'P1' })];
    const related = [ev('ChildLegDialed', 'P2', { childLegId: 'C', parentLegId: 'P2' }, { t: 2 })];
    expect(must(project('C', own, related))).toMatchObject({ parentCallId: 'P1', linkConflict: true });
    const agreeing = [ev('ChildLegDialed', 'P1', { childLegId: 'C', parentLegId: 'P1' }, { t: 0 })];
    expect(must(project('C', own, agreeing))).toMatchObject({ parentCallId: 'P1', linkConflict: false });
    const unrelated = [ev('ChildLegDialed', 'P2', { childLegId: 'OTHER', parentLegId: 'P2' }, { t: 0 })];
    expect(must(project('C', own, unrelated)).linkConflict).toBe(false);
  });

  it('fills direction/from/to from CallInitiated first, then from any party', () => {
    const row = must(
      project('C', [
        ev('CallAnswered', 'C', {}, { t: 5, party: { direction: 'outbound-dial', from: '+1555', to: '+1666' } }),
        ev('CallInitiated', 'C', { direction: 'outbound-dial', from: null, to: '+1777' }, { t: 1 }),
      ]),
    );
    expect(row).toMatchObject({ direction: 'outbound-dial', from: '+1555', to: '+1777', accountId: 'AC1' });
  });

  it('de-duplicates recordings by recordingId (url as fallback id), sorted', () => {
    const row = must(
      project('A', [
        ev('RecordingAvailable', 'A', { recordingId: 'RE2', url: 'https://x/RE2.wav', scope: 'call' }, { t: 9 }),
        ev('RecordingAvailable', 'A', { recordingId: 'RE2', url: 'https://x/RE2.wav', scope: 'call', durationSec: 12.5 }, { t: 11 }),
        ev('RecordingAvailable', 'A', { recordingId: 'RE1', url: 'https://x/RE1.wav', scope: 'utterance', durationSec: 3 }, { t: 10 }),
        ev('RecordingAvailable', 'A', { url: 'https://x/jz', scope: 'call' }, { t: 12 }),
      ]),
    );
    expect(row.recordings).toEqual([
      { recordingId: 'RE1', url: 'https://x/RE1.wav', durationSec: 3, scope: 'utterance', callId: 'A', createdAt: at(10) },
      { recordingId: 'RE2', url: 'https://x/RE2.wav', durationSec: 12.5, scope: 'call', callId: 'A', createdAt: at(9) },
      { recordingId: 'https://x/jz', url: 'https://x/jz', durationSec: null, scope: 'call', callId: 'A', createdAt: at(12) },
    ]);
  });

  it('collects sorted unique conference ids', () => {
    const row = must(
      project('A', [
        ev('ConferenceJoined', 'A', { conferenceId: 'cf-b' }, { t: 1 }),
        ev('ConferenceLeft', 'A', { conferenceId: 'cf-b' }, { t: 5 }),
        ev('ConferenceStatusChanged', 'A', { conferenceId: 'cf-a', status: 'end' }, { t: 6 }),
      ]),
    );
    expect(row.conferenceIds).toEqual(['cf-a', 'cf-b']);
  });

  it('takes sipStatus from the canonically last event that has one; who hung up is hangupBy, not the end reason', () => {
    const row = must(
      project('A', [
        ev('CallRinging', 'A', { sipStatus: 180 }, { t: 1 }),
        ev('CallCompleted', 'A', { outcome: 'failed', sipStatus: 503, terminatedBy: 'jambonz' }, { t: 4 }),
        ev('CallRinging', 'A', { sipStatus: 183 }, { t: 2 }),
      ]),
    );
    expect(row).toMatchObject({ sipStatus: 503, endReason: null, hangupBy: 'jambonz', status: 'failed' });
  });
});

/**
 * Issue 11: each dialect's own rules. Every case names the provider source that justifies it.
 */
describe('projectCallLeg: provider dialects (issue 11)', () => {
  const twilio = (events: LedgerEvent[]) => withProvider('twilio', events);

  it('Twilio completed with no positive duration is answered (https://www.twilio.com/docs/voice/api/call-resource#call-status-values), also when stored by the old translator as unanswered-unknown', () => {
    // Only the final callback: Twilio's default statusCallbackEvent is `completed`.
    for (const outcome of ['completed', 'unanswered-unknown'] as const) {
      const row = must(project('A', twilio([ev('CallCompleted', 'A', { outcome, durationSec: 0 }, { t: 30 })]), [], 'twilio'));
      expect(row).toMatchObject({ status: 'completed', talkDurationSec: 0, talkDurationSource: 'provider', final: true });
    }
  });

  it("Restcomm's rule stays Restcomm's: completed with CallDuration=0 and no answer is not answered (RC-call CallbackState, RC-test testDialStatusCallbackAliceUnavailable)", () => {
    const row = must(
      project('C', withProvider('restcomm', [ev('CallRinging', 'C', {}, { t: 1 }), ev('CallCompleted', 'C', { outcome: 'unanswered-unknown', durationSec: 0 }, { t: 30 })]), [], 'restcomm'),
    );
    expect(row.status).toBe('no-answer');
  });

  it('an AMD result proves the answer: Twilio AnsweredBy (https://www.twilio.com/docs/voice/answering-machine-detection), FreeClimb machineDetected', () => {
    const amd = ev('MachineDetected', 'A', { result: 'beep', detail: 'machine_end_beep', detectionMs: 4200 }, { t: 8 });
    const open = must(project('A', twilio([ev('CallInitiated', 'A', { direction: 'outbound-api', from: null, to: null }, { t: 0 }), amd]), [], 'twilio'));
    expect(open).toMatchObject({ status: 'in-progress', answeredBy: 'machine', answeredByDetail: 'machine_end_beep' });
    const restcomm = withProvider('restcomm', [amd, ev('CallCompleted', 'A', { outcome: 'unanswered-unknown' }, { t: 40 })]);
    expect(must(project('A', restcomm, [], 'restcomm')).status).toBe('completed');
    const fc = withProvider('freeclimb', [ev('MachineDetected', 'A', { result: 'fax', detail: 'fax modem' }, { t: 8 })]);
    expect(must(project('A', fc, [], 'freeclimb'))).toMatchObject({ status: 'in-progress', answeredBy: 'fax', answeredByDetail: 'fax modem' });
  });

  it('an imported start dated only by the import moves back to the earliest provider clock of the leg (docs/providers.md, "Which clock each leg time comes from": a 2018 call imported today stays in 2018)', () => {
    const imported = { sentAt: null, receivedAt: '2026-11-30T12:00:00.000Z', verification: 'imported' as const };
    // Twilio's voice request has no Timestamp; its status callbacks do (https://www.twilio.com/docs/voice/api/call-resource#statuscallback).
    const voice = ev('CallInitiated', 'A', { direction: 'inbound', from: '+13125550100', to: '+18475550163' }, imported);
    const ringing = ev('CallRinging', 'A', {}, { ...imported, receivedAt: '2026-11-30T12:00:00.001Z', occurredAt: '2018-03-08T10:00:01.000Z' });
    const done = ev('CallCompleted', 'A', { outcome: 'completed', durationSec: 30 }, { ...imported, receivedAt: '2026-11-30T12:00:00.002Z', occurredAt: '2018-03-08T10:00:40.000Z' });
    const row = must(project('A', twilio([voice, ringing, done]), [], 'twilio'));
    expect(row).toMatchObject({ startedAt: '2018-03-08T10:00:01.000Z', startedAtSource: 'provider', endedAt: '2018-03-08T10:00:40.000Z' });
    // A live receive time is a real observation: it keeps precedence.
    const live = { ...imported, verification: 'verified' as const };
    const liveRow = must(project('A', twilio([{ ...voice, ...live }, { ...ringing, ...live }, { ...done, ...live }]), [], 'twilio'));
    expect(liveRow.startedAt).toBe('2026-11-30T12:00:00.000Z');
  });

  it("Twilio AnsweredBy=unknown: answered, answeredBy stays null, the detail says unknown", () => {
    const row = must(project('A', twilio([ev('MachineDetected', 'A', { result: 'unknown', detail: 'unknown' }, { t: 8 }), ev('CallCompleted', 'A', { outcome: 'completed', durationSec: 20 }, { t: 30 })]), [], 'twilio'));
    expect(row).toMatchObject({ status: 'completed', answeredBy: null, answeredByDetail: 'unknown' });
  });

  it("the dialled leg's SIP code (jambonz dial_sip_status, Restcomm DialSipResponseCode: JZ-dial `this.results`, RC-vi) lands on the child, never on the caller", () => {
    const dial = ev('DialCompleted', 'P', { childLegId: 'C', outcome: 'busy', sipStatus: 486 }, { t: 20 });
    const parent = must(project('P', [ev('CallAnswered', 'P', { sipStatus: 200 }, { t: 1 }), dial]));
    expect(parent.sipStatus).toBe(200);
    const parentOnly = must(project('P', [ev('CallInitiated', 'P', { direction: 'inbound', from: null, to: null }, { t: 0 }), dial]));
    expect(parentOnly.sipStatus).toBeNull();
    expect(must(project('C', [ev('CallRinging', 'C', {}, { t: 3 })], [dial])).sipStatus).toBe(486);
  });

  it('jambonz call_termination_by is hangupBy; FreeClimb callEndedReason farEndHangup is the far end (FC-openapi CallEndedReason)', () => {
    const jz = must(project('A', [ev('CallAnswered', 'A', {}, { t: 1 }), ev('CallCompleted', 'A', { outcome: 'completed', durationSec: 9, terminatedBy: 'caller' }, { t: 10 })]));
    expect(jz).toMatchObject({ hangupBy: 'caller', endReason: null });
    const fc = withProvider('freeclimb', [ev('CallCompleted', 'A', { outcome: 'completed', durationSec: 9, endReason: 'farEndHangup' }, { t: 10 })]);
    expect(must(project('A', fc, [], 'freeclimb'))).toMatchObject({ hangupBy: 'far-end', endReason: 'farEndHangup' });
  });

  it('Twilio ErrorCode/ErrorMessage is the end reason detail', () => {
    const row = must(project('A', twilio([ev('CallCompleted', 'A', { outcome: 'failed', endReasonDetail: '32009: Your TwiML tried to Dial a SIP endpoint' }, { t: 3 })]), [], 'twilio'));
    expect(row).toMatchObject({ status: 'failed', endReasonDetail: '32009: Your TwiML tried to Dial a SIP endpoint' });
  });

  it('a final callback alone: the start is its end minus the provider duration, marked derived; provider clocks are named', () => {
    const end = ev('CallCompleted', 'A', { outcome: 'completed', durationSec: 95 }, { t: 0, occurredAt: '2018-03-05T14:03:10.000Z', sentAt: null, receivedAt: '2026-11-30T10:00:00.000Z' });
    const row = must(project('A', twilio([end]), [], 'twilio'));
    expect(row).toMatchObject({
      startedAt: '2018-03-05T14:01:35.000Z', endedAt: '2018-03-05T14:03:10.000Z', startedAtSource: 'derived', endedAtSource: 'provider', answeredAtSource: null,
    });
  });

  it('a start known from its own event keeps it, and says which clock it came from', () => {
    const row = must(project('A', [ev('CallInitiated', 'A', { direction: 'inbound', from: null, to: null }, { t: 0 }), ev('CallRinging', 'A', {}, { t: 2.5 }), ev('CallAnswered', 'A', {}, { t: 6, sentAt: null })]));
    expect(row).toMatchObject({ startedAt: at(0), startedAtSource: 'signature', answeredAtSource: 'received', pddSec: 2.5, ringDurationSec: 6.2 });
  });

  it('jambonz completed without duration is final; an unanswered leg talks 0 s in every dialect', () => {
    expect(must(project('A', [ev('CallAnswered', 'A', {}, { t: 1 }), ev('CallCompleted', 'A', { outcome: 'completed' }, { t: 9 })])).final).toBe(true);
    for (const provider of ['freeclimb', 'jambonz', 'twilio', 'restcomm'] as const) {
      const row = must(project('A', withProvider(provider, [ev('CallRinging', 'A', {}, { t: 1 }), ev('CallCompleted', 'A', { outcome: 'busy' }, { t: 9 })]), [], provider));
      expect(row).toMatchObject({ status: 'busy', talkDurationSec: 0, talkDurationSource: 'derived' });
    }
  });
});

// ---------------------------------------------------------------- properties over generated scenarios

const projectAll = (events: readonly LedgerEvent[]): CallLegRow[] =>
  legInputsOf(events)
    .map((input) => projectCallLeg(input))
    .filter((r): r is CallLegRow => r !== null);

/** A scenario with an arbitrary permutation and duplication of its events (and of each leg's own/related lists). */
const shuffledArb = callScenarioArb.chain((scenario) =>
  fc
    .tuple(
      fc.array(fc.double({ noNaN: true }), { minLength: scenario.events.length, maxLength: scenario.events.length }),
      fc.array(fc.nat({ max: 2 }), { minLength: scenario.events.length, maxLength: scenario.events.length }),
    )
    .map(([keys, copies]): [CallScenario, LedgerEvent[]] => {
      const permuted = scenario.events.map((e, i) => ({ e, k: keys[i]! })).sort((a, b) => a.k - b.k).map((x) => x.e);
      return [scenario, permuted.flatMap((e, i) => Array.from({ length: 1 + copies[i]! }, () => ({ ...e })))];
    }),
);

describe('projectCallLeg properties', () => {
  it('is a function of the event SET: any permutation and duplication gives deep-equal rows', () => {
    fc.assert(
      fc.property(shuffledArb, ([scenario, shuffled]) => {
        expect(projectAll(shuffled)).toEqual(projectAll(scenario.events));
      }),
      { numRuns: 200 },
    );
  });

  it('reconstructs every leg of the generated call as the rules say (status, parent, AMD, provider talk time)', () => {
    fc.assert(
      fc.property(callScenarioArb, (scenario) => {
        const rows = new Map(projectAll(scenario.events).map((r) => [r.callId, r]));
        expect([...rows.keys()].sort()).toEqual(scenario.legs.map((l) => l.callId).sort());
        for (const truth of scenario.legs) {
          const row = rows.get(truth.callId)!;
          expect({ id: row.callId, status: row.status, parent: row.parentCallId, by: row.answeredBy }).toEqual({
            id: truth.callId, status: truth.status, parent: truth.parentCallId, by: truth.answeredBy,
          });
          expect(row.linkConflict).toBe(false);
          if (truth.answered) expect({ talk: row.talkDurationSec, src: row.talkDurationSource, final: row.final }).toEqual({ talk: truth.talkSec, src: 'provider', final: true });
          else expect(row.talkDurationSec).toBe(0);
          for (const d of [row.ringDurationSec, row.talkDurationSec]) if (d !== null) expect(d).toBeGreaterThanOrEqual(0);
        }
      }),
      { numRuns: 200 },
    );
  });

  it('any subset of a scenario (events still in flight) projects the same whatever the order', () => {
    fc.assert(
      fc.property(
        callScenarioArb.chain((s) => fc.tuple(fc.subarray(s.events), fc.infiniteStream(fc.nat()))),
        ([subset, stream]) => {
          const rnd = stream[Symbol.iterator]();
          const shuffled = [...subset];
          for (let i = shuffled.length - 1; i > 0; i--) {
            const j = rnd.next().value! % (i + 1);
            [shuffled[i], shuffled[j]] = [shuffled[j]!, shuffled[i]!];
          }
          expect(projectAll([...shuffled, ...shuffled.slice(0, 3)])).toEqual(projectAll(subset));
        },
      ),
      { numRuns: 100 },
    );
  });
});

describe('projectCallLeg: verification', () => {
  const v = (verification: LedgerEvent['verification']): Opts => ({ verification });

  it('is verified only when every event that shaped the leg is, else the weakest (unverified < imported < verified)', () => {
    const signed = [ev('CallInitiated', 'A', { direction: 'inbound', from: '+1', to: '+2' }, v('verified')), ev('CallAnswered', 'A', {}, { ...v('verified'), t: 2 })];
    expect(must(project('A', signed)).verification).toBe('verified');
    const imported = ev('CallCompleted', 'A', { outcome: 'completed', durationSec: 9 }, { ...v('imported'), t: 12 });
    expect(must(project('A', [...signed, imported])).verification).toBe('imported');
    const unsigned = ev('CallRinging', 'A', {}, { ...v('unverified'), t: 1 });
    expect(must(project('A', [...signed, imported, unsigned])).verification).toBe('unverified');
    // An event whose provenance is unknown is not trusted.
    expect(must(project('A', [ev('CallInitiated', 'A', { direction: null, from: null, to: null })])).verification).toBe('unverified');
  });

  it('counts the parent-side events that name the leg, and a parent AMD only when it is attached to the leg', () => {
    const own = [ev('CallInitiated', 'C', { direction: 'outbound-dial', from: '+1', to: '+2' }, { ...v('verified'), parentLegId: 'P' }), ev('CallAnswered', 'C', {}, { ...v('verified'), t: 3 })];
    const importedDial = ev('ChildLegDialed', 'P', { childLegId: 'C', parentLegId: 'P' }, { ...v('imported'), t: 0 });
    expect(must(project('C', own, [importedDial])).verification).toBe('imported');
    // jambonz AMD on the parent, inside the answered child's span: attached, so it shapes the leg.
    const amd = ev('MachineDetected', 'P', { result: 'machine' }, { ...v('unverified'), t: 5 });
    const row = must(project('C', own, [amd]));
    expect(row.answeredBy).toBe('machine');
    expect(row.verification).toBe('unverified');
    // Before the child answered: not attached, so it does not touch the child's verification.
    const early = ev('MachineDetected', 'P', { result: 'machine' }, { ...v('unverified'), t: 1 });
    expect(must(project('C', own, [early]))).toMatchObject({ answeredBy: null, verification: 'verified' });
  });
});
