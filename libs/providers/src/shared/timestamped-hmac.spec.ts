import { describe, expect, it } from 'vitest';
import { signTimestampedHmac, verifyTimestampedHmac } from './timestamped-hmac.js';

// FreeClimb's own verifier test (docs/providers.md, "Signatures"): the second v1 matches the secret.
const FC_SECRET = 'sigsec_ead6d3b6904196c60835d039e91b3341c77a7793';
const FC_BODY =
  '{"accountId":"AC1334ffb694cd8d969f51cddf5f7c9b478546d50c","callId":"CAccb0b00506553cda09b51c5477f672a49e0b2213","callStatus":"ringing","conferenceId":null,"direction":"inbound","from":"+13121000109","parentCallId":null,"queueId":null,"requestType":"inboundCall","to":"+13121000096"}';
const FC_HEADER =
  't=2130000000,v1=c3957749baf61df4b1506802579cc69a74c77a1ae21447b930e5a704f9ec4120,v1=6835006e70c9b9f610e8fb3a8b36b52b3f28c12d0a2dab75091c46ca7ec11b20';

describe('verifyTimestampedHmac', () => {
  it("accepts FreeClimb's published test vector (any v1 may match)", () => {
    const r = verifyTimestampedHmac(FC_HEADER, Buffer.from(FC_BODY), [FC_SECRET], 2130000000);
    expect(r).toEqual({ ok: true, timestamp: new Date(2130000000 * 1000) });
  });

  it('refuses the vector when one body byte changes', () => {
    const tampered = FC_BODY.replace('ringing', 'rInging');
    expect(verifyTimestampedHmac(FC_HEADER, Buffer.from(tampered), [FC_SECRET], 2130000000)).toMatchObject({ ok: false, reason: 'signature does not match' });
  });

  it('accepts the computed jambonz vector of docs/providers.md, "Signatures"', () => {
    const body = '{"call_sid":"4754abdd-3a32-4c0c-91f5-8b1ed1740d2a","direction":"inbound","call_status":"completed","duration":37}';
    const header = 't=1767225600,v1=3c7931c83b208849a08ae4be235b56ff5394175bbee79181519bfaa4b0bdca74';
    expect(verifyTimestampedHmac(header, Buffer.from(body), ['whsec_example_4f2a'], 1767225600).ok).toBe(true);
  });

  it('enforces a ±300 s window both ways', () => {
    const body = Buffer.from('{}');
    const header = signTimestampedHmac(['s'], 1_000_000, body);
    expect(verifyTimestampedHmac(header, body, ['s'], 1_000_300).ok).toBe(true);
    expect(verifyTimestampedHmac(header, body, ['s'], 999_700).ok).toBe(true);
    expect(verifyTimestampedHmac(header, body, ['s'], 1_000_301)).toMatchObject({ ok: false, reason: expect.stringContaining('window') });
    expect(verifyTimestampedHmac(header, body, ['s'], 999_699)).toMatchObject({ ok: false, reason: expect.stringContaining('window') });
  });

  it('accepts any of several configured secrets (rotation)', () => {
    const body = Buffer.from('{"a":1}');
    const header = signTimestampedHmac(['new-secret'], 50, body);
    expect(verifyTimestampedHmac(header, body, ['old-secret', 'new-secret'], 50).ok).toBe(true);
    expect(verifyTimestampedHmac(header, body, ['old-secret'], 50).ok).toBe(false);
  });

  it.each([
    [undefined, 'signature header missing'],
    ['', 'signature header missing'],
    ['v1=abcd', 'signature timestamp missing or malformed'],
    ['t=abc,v1=abcd', 'signature timestamp missing or malformed'],
    ['t=50', 'signature has no v1 value'],
    ['t=50,v1=', 'signature does not match'],
  ])('refuses the malformed header %j', (header, reason) => {
    expect(verifyTimestampedHmac(header, Buffer.from('{}'), ['s'], 50)).toEqual({ ok: false, reason });
  });
});
