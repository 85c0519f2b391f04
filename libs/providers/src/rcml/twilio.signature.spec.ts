import { describe, it, expect } from 'vitest';
import { computeTwilioSignature, twilioUrlVariants, verifyRestcommToken, verifyTwilioSignature } from './twilio.signature.js';

const TOKEN = 'example_auth_token';
const URL_ = 'https://hooks.example.com/restcomm/status?tenant=acme';
const PARAMS = { CallSid: 'CA123', CallStatus: 'completed', CallDuration: '37', From: '+15551230001', To: '+15551230002' };
const VECTOR = 'hMUDcfb4O3zFEwloktHQ3jV38gM=';

describe('computeTwilioSignature', () => {
  it('matches the computed vector of docs/providers.md, "Signatures"', () => {
    expect(computeTwilioSignature(TOKEN, URL_, PARAMS)).toBe(VECTOR);
  });

  it('does not depend on parameter order, and pairs equal a record', () => {
    const pairs: Array<[string, string]> = Object.entries(PARAMS).reverse() as Array<[string, string]>;
    expect(computeTwilioSignature(TOKEN, URL_, pairs)).toBe(VECTOR);
  });

  it('appends each distinct value of a repeated key in sorted order', () => {
    const fromPairs = computeTwilioSignature(TOKEN, URL_, [['Tag', 'b'], ['Tag', 'a'], ['Tag', 'b'], ['A', 'x']]);
    const fromRecord = computeTwilioSignature(TOKEN, URL_, { A: 'x', Tag: ['a', 'b'] });
    expect(fromPairs).toBe(fromRecord);
    // Equivalent to the flattened data string url + "Ax" + "Taga" + "Tagb".
    expect(fromPairs).toBe(computeTwilioSignature(TOKEN, `${URL_}AxTagaTag`, { b: '' }));
  });

  it('signs the URL alone when there are no parameters (GET)', () => {
    expect(computeTwilioSignature(TOKEN, URL_, {})).not.toBe(VECTOR);
    expect(computeTwilioSignature(TOKEN, URL_, [])).toBe(computeTwilioSignature(TOKEN, URL_, {}));
  });
});

describe('twilioUrlVariants', () => {
  it.each([
    ['https://h.example.com/x?a=1', ['https://h.example.com/x?a=1', 'https://h.example.com:443/x?a=1']],
    ['https://h.example.com:443/x', ['https://h.example.com:443/x', 'https://h.example.com/x']],
    ['http://h.example.com/x', ['http://h.example.com/x', 'http://h.example.com:80/x']],
    ['http://u:p@h.example.com:80/x', ['http://u:p@h.example.com:80/x', 'http://u:p@h.example.com/x']],
    ['https://h.example.com:8443/x', ['https://h.example.com:8443/x']],
    ['/relative/path', ['/relative/path']],
  ])('%s', (url, expected) => {
    expect(twilioUrlVariants(url)).toEqual(expected);
  });
});

describe('verifyTwilioSignature', () => {
  it('accepts the vector', () => {
    expect(verifyTwilioSignature(VECTOR, URL_, PARAMS, [TOKEN])).toEqual({ ok: true });
  });

  it('accepts a signature made over the URL with the default port when we see it without, and vice versa', () => {
    const withPort = 'https://hooks.example.com:443/restcomm/status?tenant=acme';
    const signedWithPort = computeTwilioSignature(TOKEN, withPort, PARAMS);
    expect(signedWithPort).not.toBe(VECTOR);
    expect(verifyTwilioSignature(signedWithPort, URL_, PARAMS, [TOKEN])).toEqual({ ok: true });
    expect(verifyTwilioSignature(VECTOR, withPort, PARAMS, [TOKEN])).toEqual({ ok: true });
  });

  it('handles the http default port too', () => {
    const sig = computeTwilioSignature(TOKEN, 'http://hooks.example.com:80/s', PARAMS);
    expect(verifyTwilioSignature(sig, 'http://hooks.example.com/s', PARAMS, [TOKEN])).toEqual({ ok: true });
  });

  it('accepts the second token during rotation', () => {
    expect(verifyTwilioSignature(VECTOR, URL_, PARAMS, ['new_token_not_yet_used', TOKEN])).toEqual({ ok: true });
  });

  it('rejects a tampered parameter', () => {
    expect(verifyTwilioSignature(VECTOR, URL_, { ...PARAMS, CallDuration: '38' }, [TOKEN])).toEqual({
      ok: false,
      reason: 'signature does not match',
    });
  });

  it('rejects an added parameter, another URL and another token', () => {
    expect(verifyTwilioSignature(VECTOR, URL_, { ...PARAMS, Extra: '' }, [TOKEN]).ok).toBe(false);
    expect(verifyTwilioSignature(VECTOR, 'https://hooks.example.com/restcomm/status?tenant=evil', PARAMS, [TOKEN]).ok).toBe(false);
    expect(verifyTwilioSignature(VECTOR, URL_, PARAMS, ['other_token']).ok).toBe(false);
  });

  it('reports a missing header and a missing configuration', () => {
    expect(verifyTwilioSignature(undefined, URL_, PARAMS, [TOKEN])).toEqual({ ok: false, reason: 'signature missing' });
    expect(verifyTwilioSignature('', URL_, PARAMS, [TOKEN])).toEqual({ ok: false, reason: 'signature missing' });
    expect(verifyTwilioSignature(VECTOR, URL_, PARAMS, [])).toEqual({ ok: false, reason: 'no auth token configured' });
  });
});

describe('verifyRestcommToken', () => {
  const basic = (user: string, password: string): string => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

  it('accepts ?token=', () => {
    expect(verifyRestcommToken(new URLSearchParams('tenant=acme&token=s3cret'), undefined, ['s3cret'])).toEqual({ ok: true });
  });

  it('accepts the HTTP Basic password', () => {
    expect(verifyRestcommToken(new URLSearchParams(), basic('restcomm', 's3cret'), ['s3cret'])).toEqual({ ok: true });
  });

  it('accepts a password that contains a colon, and the second token of a rotation', () => {
    expect(verifyRestcommToken(new URLSearchParams(), basic('rc', 'a:b'), ['old', 'a:b'])).toEqual({ ok: true });
  });

  it('rejects a wrong token', () => {
    expect(verifyRestcommToken(new URLSearchParams('token=nope'), undefined, ['s3cret'])).toEqual({
      ok: false,
      reason: 'token does not match',
    });
    expect(verifyRestcommToken(new URLSearchParams(), basic('restcomm', 'nope'), ['s3cret'])).toEqual({
      ok: false,
      reason: 'token does not match',
    });
  });

  it('reports a missing token', () => {
    expect(verifyRestcommToken(new URLSearchParams('tenant=acme'), undefined, ['s3cret'])).toEqual({ ok: false, reason: 'token missing' });
    expect(verifyRestcommToken(new URLSearchParams('token='), 'Bearer xyz', ['s3cret'])).toEqual({ ok: false, reason: 'token missing' });
    expect(verifyRestcommToken(new URLSearchParams(), basic('only-user', '').replace(/=+$/, ''), ['s3cret']).ok).toBe(false);
  });
});
