import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeRawBody } from './raw-body.js';

const decode = (e: { body: string; bodyEncoding: 'utf8' | 'base64' }) => (e.bodyEncoding === 'utf8' ? Buffer.from(e.body, 'utf8') : Buffer.from(e.body, 'base64'));

describe('encodeRawBody', () => {
  it('keeps UTF-8 text as text, BOM and all', () => {
    expect(encodeRawBody(Buffer.from('CallSid=CA1&From=%2B1 — ünïcode'))).toEqual({ body: 'CallSid=CA1&From=%2B1 — ünïcode', bodyEncoding: 'utf8' });
    expect(decode(encodeRawBody(Buffer.from('\uFEFF{"a":1}')))).toEqual(Buffer.from('\uFEFF{"a":1}'));
  });

  it('falls back to base64 for bytes that are not UTF-8', () => {
    expect(encodeRawBody(Buffer.from([0x66, 0xff, 0x6f]))).toEqual({ body: 'Zv9v', bodyEncoding: 'base64' });
  });

  it('always gives back the exact bytes', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 200 }), (bytes) => {
        expect(decode(encodeRawBody(Buffer.from(bytes)))).toEqual(Buffer.from(bytes));
      }));
  });
});
