import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { canonicalJson } from './canonical-json.js';

describe('canonicalJson', () => {
  it('replaces what jsonb refuses (NUL, lone surrogates) in keys and values, and keeps surrogate pairs', () => {
    expect(canonicalJson({ b: 'x\u0000y', a: 'lone \uD800 high', c: 'lone \uDC00 low', '\uD800k': '\u{1F600} pair' })).toBe(
      JSON.stringify({ a: 'lone \uFFFD high', b: 'x\uFFFDy', c: 'lone \uFFFD low', '\uFFFDk': '\u{1F600} pair' }),
    );
  });
});

describe('canonicalJson key order', () => {
  it('keeps a "__proto__" key that JSON.parse made an own property (a provider body may carry one)', () => {
    expect(canonicalJson(JSON.parse('{"b":1,"__proto__":{"x":[1]}}'))).toBe('{"__proto__":{"x":[1]},"b":1}');
  });

  it('sorts keys as Array.prototype.sort does (UTF-16 code units), at every level', () => {
    fc.assert(
      fc.property(fc.dictionary(fc.string({ unit: 'binary' }), fc.dictionary(fc.string(), fc.integer())), (doc) => {
        const sortedCopy = (o: Record<string, unknown>): Record<string, unknown> =>
          Object.fromEntries(
            Object.keys(o)
              .sort()
              .map((k) => [k, typeof o[k] === 'object' && o[k] !== null ? sortedCopy(o[k] as Record<string, unknown>) : o[k]]),
          );
        // Keys that need no replacing: the text is then JSON.stringify of the sorted copy.
        const plain = Object.fromEntries(Object.entries(doc).filter(([k]) => !k.includes('\u0000') && !/[\uD800-\uDFFF]/.test(k)));
        expect(canonicalJson(plain)).toBe(JSON.stringify(sortedCopy(plain)));
      }),
    );
  });
});
