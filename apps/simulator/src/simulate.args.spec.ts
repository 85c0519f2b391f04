import { describe, expect, it } from 'vitest';
import { parseSimulateOptions } from './simulate.args.js';

describe('simulate options', () => {
  it('gives the documented defaults', () => {
    expect(parseSimulateOptions({ provider: 'mixed' })).toEqual({
      ok: true,
      options: { provider: 'mixed', calls: 100, days: 7, rate: 20, 'max-talk': 300, concurrency: 16, lead: 240, timeout: 60, kinds: undefined, 'base-time': undefined },
    });
  });

  it('reads numbers, kinds and the base time, and caps the lead at 280 s', () => {
    const r = parseSimulateOptions({ provider: 'twilio', calls: '5', rate: '0.5', lead: '999', kinds: 'simring, call-blast', 'base-time': '2026-01-05T14:00:00.750Z' });
    expect(r).toMatchObject({ ok: true, options: { provider: 'twilio', calls: 5, rate: 0.5, lead: 280, kinds: ['simring', 'call-blast'], 'base-time': Date.parse('2026-01-05T14:00:00Z') } });
  });

  it('refuses a bad value with a message naming the option', () => {
    for (const [values, why] of [
      [{ provider: 'plivo' }, /--provider "plivo"/],
      [{ provider: 'mixed', calls: '0' }, /--calls must be a number >= 1/],
      [{ provider: 'mixed', calls: 'ten' }, /--calls/],
      [{ provider: 'mixed', rate: '' }, /--rate/],
      [{ provider: 'mixed', kinds: 'simring,nope' }, /scenario kind "nope"/],
      [{ provider: 'mixed', 'base-time': 'yesterday' }, /--base-time/],
    ] as const) {
      const r = parseSimulateOptions(values);
      expect(r.ok, JSON.stringify(values)).toBe(false);
      if (!r.ok) expect(r.error).toMatch(why);
    }
  });
});
