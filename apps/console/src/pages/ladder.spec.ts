import { describe, expect, it } from 'vitest';
import type { CallEventDto } from '../api.js';
import { ANSWER_CONTENT_TYPE, deliveriesOf, timeOf } from './ladder.js';
import { metricSum } from './operations.js';

const ev = (position: string, callId: string, receiptId: string, type: string, times: { receivedAt: string; occurredAt?: string | null; signed?: string | null }): CallEventDto => ({
  position,
  callId,
  streamVersion: Number(position),
  type,
  data: {},
  receivedAt: times.receivedAt,
  occurredAt: times.occurredAt ?? null,
  hash: '0'.repeat(64),
  chainVerified: true,
  translation: { version: 1, supersededBy: null },
  receipt: { id: receiptId, path: '/status', contentType: 'application/json', body: '{}', bodyEncoding: 'utf8', signature: { status: 'verified', timestamp: times.signed ?? null, header: null }, headers: {} },
});

describe('ladder deliveries', () => {
  it('draws one mark per receipt per leg and flags a repeated report on the same leg', () => {
    const events = [
      ev('1', 'A', 'r1', 'CallInitiated', { receivedAt: '2026-01-01T00:00:00Z' }),
      ev('2', 'A', 'r2', 'CallCompleted', { receivedAt: '2026-01-01T00:00:05Z' }),
      ev('3', 'A', 'r2', 'RecordingAvailable', { receivedAt: '2026-01-01T00:00:05Z' }),
      ev('4', 'B', 'r2', 'DialCompleted', { receivedAt: '2026-01-01T00:00:05Z' }),
      ev('5', 'A', 'r3', 'CallCompleted', { receivedAt: '2026-01-01T00:00:06Z' }),
      ev('6', 'A', 'r4', 'CallCompleted', { receivedAt: '2026-01-01T00:00:07Z' }),
    ];
    const d = deliveriesOf(events);
    expect(d.map((x) => [x.callId, x.events.map((e) => e.type).join('+'), x.repeat])).toEqual([
      ['A', 'CallInitiated', false],
      ['A', 'CallCompleted+RecordingAvailable', false],
      ['B', 'DialCompleted', false],
      ['A', 'CallCompleted', false],
      ['A', 'CallCompleted', true],
    ]);
  });

  it("places a mark on the provider's clock by its own time, else its signed time, else (hollow) its receive time", () => {
    const [own, signed, none] = deliveriesOf([
      ev('1', 'A', 'r1', 'CallRinging', { receivedAt: '2026-01-01T00:00:10Z', occurredAt: '2026-01-01T00:00:01Z', signed: '2026-01-01T00:00:02Z' }),
      ev('2', 'A', 'r2', 'CallAnswered', { receivedAt: '2026-01-01T00:00:10Z', signed: '2026-01-01T00:00:03Z' }),
      ev('3', 'A', 'r3', 'CallCompleted', { receivedAt: '2026-01-01T00:00:10Z' }),
    ]);
    expect(timeOf(own!, 'provider')).toEqual({ ms: Date.parse('2026-01-01T00:00:01Z'), known: true });
    expect(timeOf(signed!, 'provider')).toEqual({ ms: Date.parse('2026-01-01T00:00:03Z'), known: true });
    expect(timeOf(none!, 'provider')).toEqual({ ms: Date.parse('2026-01-01T00:00:10Z'), known: false });
    expect(timeOf(own!, 'receive')).toEqual({ ms: Date.parse('2026-01-01T00:00:10Z'), known: true });
  });
});

describe('app answers in the ladder (tee mode)', () => {
  const answer = (position: string, receiptId: string, type: string, answers: string | null, durationMs: number, receivedAt: string): CallEventDto => {
    const e = ev(position, 'A', receiptId, type, { receivedAt });
    return { ...e, answers, receipt: { ...e.receipt, contentType: ANSWER_CONTENT_TYPE, body: JSON.stringify({ durationMs, outcome: 'answered', status: 200 }) } };
  };

  it('makes an answer its own mark tied to the delivery it answered, never a repeat, whatever its events carry', () => {
    const d = deliveriesOf([
      ev('1', 'A', 'r1', 'CallInitiated', { receivedAt: '2026-01-01T00:00:00Z', occurredAt: '2026-01-01T00:00:00Z' }),
      answer('2', 'a1', 'AppAnswered', 'r1', 40, '2026-01-01T00:00:00.050Z'),
      // A DialRequested of the same answer need not name the delivery: the receipt groups it.
      answer('3', 'a1', 'DialRequested', null, 40, '2026-01-01T00:00:00.050Z'),
      answer('4', 'a2', 'AppAnswered', 'r-missing', 5, '2026-01-01T00:00:09Z'),
      answer('5', 'a3', 'AppAnswered', 'r-missing', 5, '2026-01-01T00:00:10Z'),
    ]);
    expect(d.map((x) => [x.key, x.answer ?? null, x.answeredBy ?? null, x.repeat])).toEqual([
      ['A|r1', null, 'A|a1', false],
      ['A|a1', { to: 'A|r1' }, null, false],
      ['A|a2', { to: null }, null, false],
      ['A|a3', { to: null }, null, false],
    ]);
    const byKey = new Map(d.map((x) => [x.key, x]));
    // On the provider's clock an answer is placed after its delivery by the time the app took.
    expect(timeOf(d[1]!, 'provider', byKey)).toEqual({ ms: Date.parse('2026-01-01T00:00:00Z') + 40, known: true });
    expect(timeOf(d[2]!, 'provider', byKey)).toEqual({ ms: Date.parse('2026-01-01T00:00:09Z'), known: false });
  });
});

describe('metricSum', () => {
  it('adds every label set of one metric and no other metric sharing its prefix', () => {
    const text = ['# HELP x', 'ledger_webhooks_total{provider="a"} 3', 'ledger_webhooks_total{provider="b"} 4', 'ledger_webhooks_totally 100', 'ledger_ingest_queue_depth 2'].join('\n');
    expect(metricSum(text, 'ledger_webhooks_total')).toBe(7);
    expect(metricSum(text, 'ledger_ingest_queue_depth')).toBe(2);
    expect(metricSum(text, 'absent')).toBeNull();
  });
});
