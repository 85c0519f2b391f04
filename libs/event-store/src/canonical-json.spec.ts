import { describe, expect, it } from 'vitest';
import { canonicalJson } from './canonical-json.js';

describe('canonicalJson', () => {
  it('replaces what jsonb refuses (NUL, lone surrogates) in keys and values, and keeps surrogate pairs', () => {
    expect(canonicalJson({ b: 'x\u0000y', a: 'lone \uD800 high', c: 'lone \uDC00 low', '\uD800k': '\u{1F600} pair' })).toBe(
      JSON.stringify({ a: 'lone \uFFFD high', b: 'x\uFFFDy', c: 'lone \uFFFD low', '\uFFFDk': '\u{1F600} pair' }),
    );
  });
});
