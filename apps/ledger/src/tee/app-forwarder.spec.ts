import { describe, expect, it } from 'vitest';
import { forwardableHeaders, teeTargetUrl } from './app-forwarder.js';

describe('teeTargetUrl', () => {
  it('appends the sub-path and the query as received to the configured base', () => {
    expect(teeTargetUrl('https://app.example.com/freeclimb', 'voice/step%201', 'a=1&b=%2B1')).toBe('https://app.example.com/freeclimb/voice/step%201?a=1&b=%2B1');
    expect(teeTargetUrl('https://app.example.com/freeclimb', '', '')).toBe('https://app.example.com/freeclimb');
  });

  it('never leaves the configured base: dot segments, plain or encoded, are refused', () => {
    for (const sub of ['..', '../admin', 'a/../../x', '%2e%2e/admin', '%2E./x', '.%2e/x', './x']) expect(teeTargetUrl('https://app.example.com/fc', sub, ''), sub).toBeNull();
    // The authority cannot be changed from the path either.
    expect(teeTargetUrl('https://app.example.com/fc', '@evil.example.com/x', '')).toBe('https://app.example.com/fc/@evil.example.com/x');
    expect(new URL(teeTargetUrl('https://app.example.com', '/evil.example.com', '')!).host).toBe('app.example.com');
  });
});

describe('forwardableHeaders', () => {
  it('drops hop-by-hop headers, those the Connection header names, and what undici sets itself', () => {
    const out = forwardableHeaders({
      connection: 'keep-alive, X-Hop',
      'keep-alive': 'timeout=5',
      'x-hop': '1',
      'transfer-encoding': 'chunked',
      'proxy-authorization': 'Basic x',
      host: 'ledger.example.com',
      'content-length': '12',
      te: 'trailers',
      upgrade: 'h2c',
      'content-type': 'application/json',
      'freeclimb-signature': 't=1,v1=abc',
      'x-multi': ['a', 'b'],
    });
    expect(out).toEqual({ 'content-type': 'application/json', 'freeclimb-signature': 't=1,v1=abc', 'x-multi': 'a, b' });
  });
});
