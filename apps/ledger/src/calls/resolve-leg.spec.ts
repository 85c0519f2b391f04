import { describe, expect, it } from 'vitest';
import type { LedgerError } from '@lib/ledger';
import type { StoredLeg } from './call-leg.mapper.js';
import { pickLeg } from './resolve-leg.js';

const leg = (provider: StoredLeg['provider']) => ({ provider, callId: 'CA1' }) as StoredLeg;
const thrown = (f: () => unknown) => {
  try {
    f();
  } catch (err) {
    return err as LedgerError;
  }
  throw new Error('expected a throw');
};

describe('pickLeg', () => {
  it('answers the only leg, 404 for none, and 409 naming the providers for several', () => {
    expect(pickLeg('CA1', undefined, [leg('jambonz')]).provider).toBe('jambonz');
    expect(thrown(() => pickLeg('CA1', 'twilio', []))).toMatchObject({ code: 'CALL.NOT_FOUND', message: expect.stringContaining('twilio') });
    expect(thrown(() => pickLeg('CA1', undefined, [leg('twilio'), leg('freeclimb')]))).toMatchObject({ code: 'CALL.AMBIGUOUS', details: { providers: ['freeclimb', 'twilio'] } });
  });
});
