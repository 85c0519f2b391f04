import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { maskDocument, maskNumber, maskText } from './masking.js';

describe('masking numbers for read-masked keys', () => {
  it('keeps the last four digits of a number, the shape of a SIP URI, and the erased marker', () => {
    expect(maskNumber('+13125550147')).toBe('+*******0147');
    expect(maskNumber('sip:alice@example.com')).toBe('***:*****@******e.com');
    expect(maskNumber('[erased]')).toBe('[erased]');
    expect(maskDocument({ window: { from: '2026-12-01T00:00:00.000Z', to: '2026-12-02T00:00:00.000Z' } })).toEqual({ window: { from: '2026-12-01T00:00:00.000Z', to: '2026-12-02T00:00:00.000Z' } });
  });

  it('masks numbers in raw bodies, JSON and form-encoded, not ids', () => {
    expect(maskText('{"from":"+13125550147","callId":"CA5f3e13125550147"}')).toBe('{"from":"+*******0147","callId":"CA5f3e13125550147"}');
    expect(maskText('From=%2B13125550147&To=sip%3Abob%40x&Called=13125550100')).toBe('From=%2B*******0147&To=sip%3Abob%40x&Called=*******0100');
    expect(maskText('<sip:+13125550147@pbx.example.com>')).toBe('<sip:+*******0147@pbx.example.com>');
  });

  it('never lets a whole E.164 number through, wherever it sits in a document', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^\+[1-9][0-9]{9,13}$/), fc.constantFrom('from', 'to', 'callerId', 'body', 'text'), (n, key) => {
        const doc = { data: [{ [key]: key === 'body' ? `{"x":"${n}"}` : n }], targets: [{ type: 'phone', value: n }] };
        const masked = JSON.stringify(maskDocument(doc));
        expect(masked).not.toContain(n.slice(1));
        expect(masked).toContain(n.slice(-4));
      }),
    );
  });
});
