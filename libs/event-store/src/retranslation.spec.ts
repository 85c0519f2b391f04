import { describe, expect, it } from 'vitest';
import { newEvent } from '@lib/ledger';
import { sameTranslation } from './retranslation.js';
import type { CurrentEvent } from './retranslation.repository.js';

/** A stored event as the re-translation reads it back (times as PostgreSQL prints them, absent fields as null). */
const stored = (over: Partial<CurrentEvent> = {}): CurrentEvent => ({
  stream: 'callLeg-twilio:CA1',
  type: 'CallCompleted',
  data: { outcome: 'completed', durationSec: 3 },
  occurredAt: '2018-03-05T14:03:10.000Z',
  legId: 'CA1',
  accountId: null,
  parentLegId: null,
  party: null,
  providerSeq: null,
  translation: 0,
  ...over,
});
const fresh = () => ({ ...newEvent('CallCompleted', 'CA1', { outcome: 'completed', durationSec: 3 }), occurredAt: '2018-03-05T14:03:10Z' });

describe('sameTranslation', () => {
  it('holds for the same events read back from the store, whatever the spelling of the time and of absent fields', () => {
    expect(sameTranslation('twilio', [stored()], [fresh()])).toBe(true);
    expect(sameTranslation('twilio', [], [])).toBe(true);
  });

  it('fails on any difference a translator decides: data, type, leg, stream, time, count or order', () => {
    expect(sameTranslation('twilio', [stored({ data: { outcome: 'failed', durationSec: 3 } })], [fresh()])).toBe(false);
    expect(sameTranslation('twilio', [stored({ type: 'UnrecognizedWebhook' })], [fresh()])).toBe(false);
    expect(sameTranslation('twilio', [stored({ legId: 'CA2', stream: 'callLeg-twilio:CA2' })], [fresh()])).toBe(false);
    expect(sameTranslation('twilio', [stored({ stream: 'unrecognized-twilio' })], [fresh()])).toBe(false);
    expect(sameTranslation('twilio', [stored({ occurredAt: null })], [fresh()])).toBe(false);
    expect(sameTranslation('twilio', [stored()], [fresh(), fresh()])).toBe(false);
    expect(sameTranslation('twilio', [stored(), stored({ type: 'CallAnswered', data: {} })], [{ ...newEvent('CallAnswered', 'CA1', {}), occurredAt: '2018-03-05T14:03:10Z' }, fresh()])).toBe(false);
  });
});
