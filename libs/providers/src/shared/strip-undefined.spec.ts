import { describe, expect, it } from 'vitest';
import { stripUndefined } from './strip-undefined.js';

describe('stripUndefined', () => {
  it('drops undefined fields and keeps null, false, 0 and empty strings', () => {
    const out = stripUndefined({ a: undefined, b: null, c: false, d: 0, e: '' });
    expect(out).toEqual({ b: null, c: false, d: 0, e: '' });
    expect(Object.keys(out)).not.toContain('a');
  });
});
