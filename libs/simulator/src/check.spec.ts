import { describe, expect, it } from 'vitest';
import { diffCallTree, diffKpis, diffQueueEvents, formatDifference } from './check.js';
import type { ExpectedCall, ExpectedLeg } from './expected-outcome.js';

const leg = (callId: string, parentCallId: string | null, extra: Partial<ExpectedLeg> = {}): ExpectedLeg => ({
  provider: 'freeclimb',
  callId,
  parentCallId,
  rootCallId: 'P',
  depth: parentCallId ? 1 : 0,
  direction: parentCallId ? 'outbound-dial' : 'inbound',
  from: '+1',
  to: '+2',
  status: 'completed',
  answeredBy: null,
  talkDurationSec: 42,
  durationSource: 'provider',
  ringDurationSec: 3,
  startedAt: '2026-01-05T14:02:10.000Z',
  recordings: [],
  conferenceIds: [],
  final: true,
  ...extra,
});

const expected: ExpectedCall = { index: 3, kind: 'simring', provider: 'freeclimb', rootCallId: 'P', legs: [leg('P', null), leg('C1', 'P'), leg('C2', 'P', { status: 'canceled', talkDurationSec: 0, durationSource: 'derived' })] };

/** An API answer matching `expected` (extra fields the check does not read included). */
const node = (l: ExpectedLeg, children: unknown[] = []) => ({ ...l, accountId: 'AC1', eventCount: 3, lastPosition: '9', sipStatus: null, endReason: null, children });
const matching = () => node(expected.legs[0]!, [node(expected.legs[1]!), node(expected.legs[2]!)]);

describe('diffCallTree', () => {
  it('finds nothing when the answer matches, within rounding and whatever the time spelling', () => {
    const answer = matching();
    (answer.children[0] as { talkDurationSec: number }).talkDurationSec = 42.0004;
    (answer.children[0] as { startedAt: string }).startedAt = '2026-01-05T14:02:10Z';
    expect(diffCallTree(expected, answer)).toEqual([]);
  });

  it('reports each differing field, a missing leg, an extra leg and a leg under the wrong parent', () => {
    const answer = node(expected.legs[0]!, [
      node({ ...expected.legs[1]!, status: 'no-answer', ringDurationSec: 4 }, [node(expected.legs[2]!)]),
      node(leg('X', 'P')),
    ]);
    const diffs = diffCallTree(expected, answer).map(formatDifference);
    expect(diffs).toEqual([
      'call 3 (simring, freeclimb P) leg C1 status: expected "completed", got "no-answer"',
      'call 3 (simring, freeclimb P) leg C1 ringDurationSec: expected 3, got 4',
      'call 3 (simring, freeclimb P) leg C2 position in tree (parent): expected "P", got "C1"',
      'call 3 (simring, freeclimb P) leg X: expected "not in the tree", got "present"',
    ]);
    expect(diffCallTree(expected, node(expected.legs[0]!)).map((d) => d.path)).toEqual([
      'call 3 (simring, freeclimb P) leg C1',
      'call 3 (simring, freeclimb P) leg C2',
    ]);
  });

  it('skips fields the expectation leaves out (unpredictable in a live run)', () => {
    const { ringDurationSec: _r, startedAt: _s, ...partial } = expected.legs[0]!;
    const answer = node({ ...expected.legs[0]!, ringDurationSec: 99, startedAt: '2030-01-01T00:00:00Z' });
    expect(diffCallTree({ ...expected, legs: [partial] }, answer)).toEqual([]);
  });

  it('compares recordings by id, scope and duration', () => {
    const withRec = { ...expected, legs: [leg('P', null, { recordings: [{ recordingId: 'RE1', scope: 'call', durationSec: 10 }] })] };
    const answer = node({ ...withRec.legs[0]!, recordings: [{ recordingId: 'RE1', scope: 'dial', durationSec: 10 }, { recordingId: 'RE2', scope: 'call', durationSec: 1 }] as never });
    expect(diffCallTree(withRec, answer).map((d) => d.path)).toEqual([
      'call 3 (simring, freeclimb P) leg P recording RE1 scope',
      'call 3 (simring, freeclimb P) leg P recording RE2',
    ]);
  });

  it('says so when there is no tree at all', () => {
    expect(diffCallTree(expected, null)).toEqual([{ path: 'call 3 (simring, freeclimb P)', expected: 'a call tree', actual: null }]);
  });
});

describe('diffKpis', () => {
  it('compares the expected KPIs only, with tolerance on ratios and seconds', () => {
    const exp = { legs: 3, attempts: 3, asr: 2 / 3, acdSec: 12.345, outcomes: { completed: 2, busy: 1, 'no-answer': 0, failed: 0, canceled: 0 } };
    expect(diffKpis(exp, { legs: 3, attempts: 3, asr: 0.6667, acdSec: 12.345, avgRingSec: 123, outcomes: { completed: 2, busy: 1 } }, 'totals')).toEqual([]);
    expect(diffKpis(exp, { legs: 4, attempts: 3, asr: 0.7, acdSec: 12.345, outcomes: { completed: 2, busy: 0 } }, 'totals').map(formatDifference)).toEqual([
      'totals legs: expected 3, got 4',
      'totals asr: expected 0.6666666666666666, got 0.7',
      'totals outcomes.busy: expected 1, got 0',
    ]);
  });
});

describe('diffQueueEvents', () => {
  const queued: ExpectedCall = { ...expected, kind: 'queue', provider: 'twilio', queues: [{ callId: 'P', queueId: 'QU1', waitRequests: 2, result: 'bridged', queueTimeSec: 41 }] };
  const ev = (type: string, data: Record<string, unknown>, callId = 'P') => ({ callId, type, data });
  const trail = (...events: unknown[]) => ({ data: [ev('CallInitiated', {}), ...events], chain: { valid: true } });

  it("finds nothing when the leg's events show each waitUrl request and the stay's end", () => {
    const answer = trail(ev('QueueEntered', { queueId: 'QU1' }), ev('QueueEntered', { queueId: 'QU1', queueTimeSec: 30 }), ev('QueueLeft', { queueId: 'QU1', queueTimeSec: 41, result: 'bridged' }));
    expect(diffQueueEvents(queued, answer)).toEqual([]);
  });

  it('reports a missing wait request, a wrong result and a queue on another leg', () => {
    const answer = trail(ev('QueueEntered', { queueId: 'QU1' }), ev('QueueEntered', { queueId: 'QU1' }, 'C1'), ev('QueueLeft', { queueId: 'QU1', queueTimeSec: 41, result: 'hangup' }));
    expect(diffQueueEvents(queued, answer).map(formatDifference)).toEqual([
      'call 3 (queue, twilio P) leg P queue QU1 QueueEntered events: expected 2, got 1',
      'call 3 (queue, twilio P) leg P queue QU1 QueueLeft: expected {"result":"bridged","queueTimeSec":41}, got {"result":"hangup","queueTimeSec":41}',
    ]);
    expect(diffQueueEvents(queued, trail()).map((d) => d.path)).toEqual(['call 3 (queue, twilio P) leg P queue QU1 QueueEntered events', 'call 3 (queue, twilio P) leg P queue QU1 QueueLeft']);
  });

  it('has nothing to say about a call without queues, and says so when there is no event list', () => {
    expect(diffQueueEvents(expected, null)).toEqual([]);
    expect(diffQueueEvents(queued, { error: { code: 'not_found' } })).toHaveLength(1);
  });
});
