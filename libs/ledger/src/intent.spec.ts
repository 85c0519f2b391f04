import { describe, expect, it } from 'vitest';
import { matchIntent, type IntentChild, type StoredDialRequest } from './intent.js';

const dial = (targets: [string, string][], extra: Partial<StoredDialRequest> = {}): StoredDialRequest => ({
  position: '10',
  answeredAt: '2026-01-01T00:00:00.000Z',
  index: 0,
  verb: 'dial',
  targets: targets.map(([type, value]) => ({ type, value })),
  mode: targets.length > 1 ? 'simultaneous' : 'single',
  ringTimeoutSec: 20,
  defaultRingTimeoutSec: 60,
  timeLimitSec: null,
  callerId: null,
  amd: null,
  record: null,
  hooks: {},
  ...extra,
});
const child = (callId: string, to: string, extra: Partial<IntentChild> = {}): IntentChild => ({ callId, to, status: 'completed', ringDurationSec: 3, final: true, ...extra });

describe('matchIntent', () => {
  it('links each target to the child leg it became (numbers and SIP URIs compared loosely), and finds nothing wrong', () => {
    const r = matchIntent('P', [dial([['phone', '+1 (555) 000-1111'], ['sip', 'sip:bob@pbx.example.com']])], [child('C1', '+15550001111'), child('C2', 'sip:bob@10.0.0.1:5060', { status: 'canceled', ringDurationSec: 20 })], []);
    expect(r.matches[0]!.children.map((c) => c.childLegIds)).toEqual([['C1'], ['C2']]);
    expect(r.discrepancies).toEqual([]);
  });

  it('flags a target never attempted and a child leg no request explains', () => {
    const r = matchIntent('P', [dial([['phone', '+1555'], ['phone', '+1666']])], [child('C1', '+1555'), child('C9', '+1999')], []);
    expect(r.discrepancies.map((d) => [d.kind, d.target?.value ?? d.childLegId])).toEqual([
      ['target-not-attempted', '+1666'],
      ['unexplained-child', 'C9'],
    ]);
  });

  it('flags a ring longer than the timeout asked (or the default when none was), beyond a grace', () => {
    expect(matchIntent('P', [dial([['phone', '+1']])], [child('C1', '+1', { ringDurationSec: 25 })], []).discrepancies).toEqual([]);
    const over = matchIntent('P', [dial([['phone', '+1']])], [child('C1', '+1', { ringDurationSec: 26 })], []).discrepancies;
    expect(over).toMatchObject([{ kind: 'ring-over-timeout', childLegId: 'C1' }]);
    expect(matchIntent('P', [dial([['phone', '+1']], { ringTimeoutSec: null })], [child('C1', '+1', { ringDurationSec: 64 })], []).discrepancies).toEqual([]);
  });

  it('flags a dial outcome the action hook told the app that differs from how the child leg ended', () => {
    const kids = [child('C1', '+1', { status: 'no-answer' })];
    expect(matchIntent('P', [dial([['phone', '+1']])], kids, [{ childLegId: 'C1', outcome: 'noAnswer' }]).discrepancies).toEqual([]);
    expect(matchIntent('P', [dial([['phone', '+1']])], kids, [{ childLegId: 'C1', outcome: 'completed' }]).discrepancies).toMatchObject([{ kind: 'outcome-mismatch', childLegId: 'C1' }]);
    // A leg still in progress is not judged yet.
    expect(matchIntent('P', [dial([['phone', '+1']])], [child('C1', '+1', { status: 'ringing', final: false })], [{ childLegId: 'C1', outcome: 'completed' }]).discrepancies).toEqual([]);
  });

  it('a conference target has no child leg to expect', () => {
    expect(matchIntent('P', [dial([['conference', 'room']])], [], []).discrepancies).toEqual([]);
  });
});
