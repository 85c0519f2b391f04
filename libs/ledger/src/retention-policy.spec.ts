import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import { hasRetention, monthRetention, parseRetentionPolicy, retentionFor } from './retention-policy.js';

const DAY = 86_400_000;

describe('parseRetentionPolicy (LEDGER_RETENTION)', () => {
  it('reads a default, provider and account rules, and keep', () => {
    const p = parseRetentionPolicy(' raw=400d, raw:twilio=90d ,raw:twilio:AC123=30d, raw:jambonz:acct-7=keep');
    expect(p).toEqual({ defaultDays: 400, providers: { twilio: 90 }, accounts: { 'twilio:AC123': 30, 'jambonz:acct-7': 'keep' } });
    expect(retentionFor(p, 'twilio', 'AC123')).toBe(30);
    expect(retentionFor(p, 'twilio', 'AC999')).toBe(90);
    expect(retentionFor(p, 'twilio', null)).toBe(90);
    expect(retentionFor(p, 'freeclimb', 'x')).toBe(400);
    expect(retentionFor(p, 'jambonz', 'acct-7')).toBe('keep');
    expect(hasRetention(p)).toBe(true);
  });

  it('keeps everything without rules, and refuses what it cannot read', () => {
    const none = parseRetentionPolicy('');
    expect(hasRetention(none)).toBe(false);
    expect(retentionFor(none, 'twilio', 'AC1')).toBe('keep');
    for (const bad of ['raw=400', 'raw=0d', 'bodies=10d', 'raw:twilio=-3d', 'raw=12m', 'raw:a:b:c=1d']) {
      expect(() => parseRetentionPolicy(bad)).toThrow(/LEDGER_RETENTION/);
    }
  });
});

describe('monthRetention: whole months, the shortest rule present wins', () => {
  const p = parseRetentionPolicy('raw=400d,raw:twilio=90d,raw:jambonz:forever=keep');
  const jan = new Date('2025-01-01T00:00:00Z');
  const end = Date.parse('2025-02-01T00:00:00Z');

  it('drops a month once its shortest rule has passed since its end, and says until when the others keep it', () => {
    const scopes = [
      { provider: 'twilio', accountId: 'AC1' },
      { provider: 'jambonz', accountId: 'a' },
    ];
    expect(monthRetention(p, jan, scopes, new Date(end + 90 * DAY - 1)).expired).toBe(false);
    const r = monthRetention(p, jan, scopes, new Date(end + 90 * DAY));
    expect(r.expired).toBe(true);
    expect(r.pairs.map((x) => [x.provider, x.days, x.keepUntil])).toEqual([
      ['twilio', 90, new Date(end + 90 * DAY).toISOString()],
      ['jambonz', 400, new Date(end + 400 * DAY).toISOString()],
    ]);
  });

  it('never drops a month whose pairs are all kept', () => {
    expect(monthRetention(p, jan, [{ provider: 'jambonz', accountId: 'forever' }], new Date('2099-01-01')).expired).toBe(false);
  });

  it('property: expired exactly when now is past month end + the minimum numeric rule of the pairs present', () => {
    const rule = fc.oneof(fc.integer({ min: 1, max: 900 }), fc.constant('keep' as const));
    fc.assert(
      fc.property(
        fc.dictionary(fc.constantFrom('twilio', 'jambonz', 'freeclimb'), rule),
        fc.option(rule, { nil: undefined }),
        fc.array(fc.record({ provider: fc.constantFrom('twilio', 'jambonz', 'freeclimb', 'restcomm'), accountId: fc.option(fc.constantFrom('A', 'B'), { nil: null }) }), { maxLength: 5 }),
        fc.integer({ min: 0, max: 1200 }),
        (providers, defaultDays, scopes, afterDays) => {
          const policy = { defaultDays, providers, accounts: {} };
          const now = new Date(end + afterDays * DAY);
          const days = (scopes.length ? scopes : [null]).map((s) => (s ? retentionFor(policy, s.provider, s.accountId) : (defaultDays ?? 'keep')));
          const numeric = days.filter((d): d is number => d !== 'keep');
          const expected = numeric.length > 0 && afterDays >= Math.min(...numeric);
          expect(monthRetention(policy, jan, scopes, now).expired).toBe(expected);
        },
      ),
    );
  });
});
