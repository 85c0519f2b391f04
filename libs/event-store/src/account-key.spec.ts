import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { accountKeyOf } from './account-key.js';
import { canonicalJson } from './canonical-json.js';

const ev = (accountId: string | null) => ({ accountId });

describe('accountKeyOf', () => {
  it('is <provider>:<account> from the first event that names one', () => {
    expect(accountKeyOf('twilio', [ev('AC1'), ev('AC2')])).toBe('twilio:AC1');
    expect(accountKeyOf('jambonz', [ev(null), ev(''), ev('acct-9')])).toBe('jambonz:acct-9');
  });

  it('is <provider>: when no event names an account, or there are no events', () => {
    expect(accountKeyOf('freeclimb', [ev(null)])).toBe('freeclimb:');
    expect(accountKeyOf('restcomm', [])).toBe('restcomm:');
    expect(accountKeyOf('ledger', [ev(''), ev(null)])).toBe('ledger:');
  });

  it('equals what the backfill reads back from the stored metadata (provider || ":" || metadata->>accountId)', () => {
    fc.assert(
      fc.property(fc.constantFrom('freeclimb', 'jambonz', 'twilio', 'restcomm'), fc.array(fc.option(fc.string({ unit: 'binary' }), { nil: null }), { maxLength: 4 }), (provider, ids) => {
        const stored = ids.map((id) => (JSON.parse(canonicalJson({ accountId: id })) as { accountId: string | null }).accountId);
        const first = stored.find((s) => s !== null && s !== '');
        expect(accountKeyOf(provider, ids.map(ev))).toBe(`${provider}:${first ?? ''}`);
      }),
    );
  });
});
