import * as crypto from 'node:crypto';
import fc from 'fast-check';
import { afterEach, describe, expect, it, vi } from 'vitest';

// Spy on the real timingSafeEqual so the test can see every comparison the helper makes.
vi.mock('node:crypto', async (importOriginal) => {
  const real = await importOriginal<typeof import('node:crypto')>();
  return { ...real, timingSafeEqual: vi.fn(real.timingSafeEqual) };
});

const { constantTimeEqual, matchesAny } = await import('./constant-time.js');
const timingSafeEqual = vi.mocked(crypto.timingSafeEqual);

afterEach(() => timingSafeEqual.mockClear());

describe('constantTimeEqual', () => {
  // 200 property runs: fast alone, but past the default 5 s on a 2-core machine shared by the full suite's workers.
  it('agrees with === on any pair of strings, unicode and different lengths included', { timeout: 60_000 }, () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'binary' }), (a, b) => {
        expect(constantTimeEqual(a, b)).toBe(a === b);
        expect(constantTimeEqual(a, a)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it('tells apart strings that differ only in lone surrogates (UTF-8 would map both to U+FFFD)', () => {
    expect(constantTimeEqual('\uD800', '\uDC00')).toBe(false);
    expect(constantTimeEqual('sig\uD83D', 'sig\uD83E')).toBe(false);
  });

  it('decides through crypto.timingSafeEqual on buffers of equal length, whatever the input lengths', () => {
    fc.assert(
      fc.property(fc.string(), fc.string(), (a, b) => {
        timingSafeEqual.mockClear();
        constantTimeEqual(a, b);
        expect(timingSafeEqual).toHaveBeenCalledTimes(1);
        const [x, y] = timingSafeEqual.mock.calls[0]! as [Buffer, Buffer];
        expect(x.length).toBe(y.length);
      }),
      { numRuns: 200 },
    );
  });

  it('compares a digest against a candidate of another length without throwing', () => {
    const digest = crypto.createHmac('sha256', 'k').update('x').digest('hex');
    expect(constantTimeEqual(digest, digest.slice(0, 10))).toBe(false);
    expect(constantTimeEqual(digest, `${digest}00`)).toBe(false);
    expect(constantTimeEqual('', digest)).toBe(false);
  });
});

describe('matchesAny', () => {
  it('compares against every secret, so that the time does not tell which one matched', () => {
    expect(matchesAny('b', ['a', 'b', 'c'])).toBe(true);
    expect(timingSafeEqual).toHaveBeenCalledTimes(3);
    timingSafeEqual.mockClear();
    expect(matchesAny('z', ['a', 'b', 'c'])).toBe(false);
    expect(timingSafeEqual).toHaveBeenCalledTimes(3);
    expect(matchesAny('a', [])).toBe(false);
  });
});
