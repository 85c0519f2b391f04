import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { LedgerError } from '@lib/ledger';
import { decodeCursor, encodeCursor } from './page-cursor.js';

const error = (f: () => unknown): LedgerError => {
  try {
    f();
  } catch (err) {
    return err as LedgerError;
  }
  throw new Error('expected a throw');
};

describe('page cursors', () => {
  it('round-trips any key for the same scope and filters, whatever the filter key order', () => {
    fc.assert(
      fc.property(fc.array(fc.option(fc.string(), { nil: null }), { minLength: 1, maxLength: 4 }), fc.string(), (key, account) => {
        const c = encodeCursor('calls', { accountId: account, status: 'completed', limit: undefined }, key);
        expect(decodeCursor('calls', { status: 'completed', accountId: account }, c, key.length)).toEqual(key);
      }),
    );
  });

  it('refuses a cursor from other filters, another route, an edited one and garbage, naming the parameter', () => {
    const c = encodeCursor('calls', { provider: 'jambonz' }, ['2026-01-01T00:00:00.000Z', 'jambonz', 'a']);
    for (const bad of [
      () => decodeCursor('calls', { provider: 'twilio' }, c, 3),
      () => decodeCursor('calls', {}, c, 3),
      () => decodeCursor('recordings', { provider: 'jambonz' }, c, 3),
      () => decodeCursor('calls', { provider: 'jambonz' }, `x${c}`, 3),
      () => decodeCursor('calls', { provider: 'jambonz' }, c.replace(/.\./, (m) => (m[0] === 'A' ? 'B' : 'A') + '.'), 3),
      () => decodeCursor('calls', { provider: 'jambonz' }, 'garbage', 3),
      () => decodeCursor('calls', { provider: 'jambonz' }, 'a.b.c', 3),
      () => decodeCursor('calls', { provider: 'jambonz' }, c, 2),
    ]) {
      const err = error(bad);
      expect(err).toBeInstanceOf(LedgerError);
      expect(err.code).toBe('QUERY.INVALID_CURSOR');
      expect(err.message).toContain('"cursor"');
    }
  });

  it('treats a Date filter like its ISO string', () => {
    const c = encodeCursor('calls', { since: new Date('2026-01-01T00:00:00Z') }, ['k']);
    expect(decodeCursor('calls', { since: new Date('2026-01-01T00:00:00.000Z') }, c, 1)).toEqual(['k']);
  });
});
