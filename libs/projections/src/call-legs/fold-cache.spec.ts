import { describe, expect, it } from 'vitest';
import type { CallLegFold } from '@lib/ledger';
import { cachedFold, keepFold } from './fold-cache.js';

const fold = (id: string): CallLegFold => ({ own: { [id]: '1' }, links: {}, events: [] });

describe('fold cache', () => {
  it('answers a state only under the tag its row was written with', () => {
    const seq = keepFold(1, 'twilio', 'CA1', fold('a'))!;
    expect(cachedFold(1, 'twilio', 'CA1', seq)).toEqual(fold('a'));
    // Another tag: the row was written by someone else (another instance, a rebuild, a rolled-back batch).
    expect(cachedFold(1, 'twilio', 'CA1', String(BigInt(seq) + 1n))).toBeUndefined();
    expect(cachedFold(1, 'twilio', 'CA1', null)).toBeUndefined();
    // Another generation or leg with the same tag is another leg.
    expect(cachedFold(2, 'twilio', 'CA1', seq)).toBeUndefined();
    expect(cachedFold(1, 'jambonz', 'CA1', seq)).toBeUndefined();
  });

  it('gives every write a new tag, and forgets a leg written without a state', () => {
    const first = keepFold(1, 'twilio', 'CA2', fold('a'))!;
    const second = keepFold(1, 'twilio', 'CA2', fold('b'))!;
    expect(second).not.toBe(first);
    expect(cachedFold(1, 'twilio', 'CA2', first)).toBeUndefined();
    expect(keepFold(1, 'twilio', 'CA2', null)).toBeNull();
    expect(cachedFold(1, 'twilio', 'CA2', second)).toBeUndefined();
  });
});
