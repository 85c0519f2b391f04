import { randomUUID } from 'node:crypto';
import { WebhookResponse } from '@jambonz/sdk/webhook';
import twilio from 'twilio';
import { describe, expect, it } from 'vitest';
import { computeTwilioSignature, verifyTwilioSignature } from './rcml/twilio.signature.js';
import { signTimestampedHmac, verifyTimestampedHmac } from './shared/timestamped-hmac.js';

/**
 * The providers' own SDKs, used only as test oracles: our signer must satisfy their verifiers and our
 * verifiers must accept what their signers produce.
 */
describe('signatures against official SDKs', () => {
  it('twilio-node getExpectedTwilioSignature and validateRequest agree with ours', () => {
    const token = 'oracle_token_9f2';
    for (let i = 0; i < 25; i++) {
      const url = `https://ledger.example.com/v1/webhooks/twilio/status?tenant=t${i}&x=${encodeURIComponent('a b')}`;
      const params: Record<string, string> = {
        CallSid: `CA${randomUUID().replaceAll('-', '')}`,
        AccountSid: 'AC0123',
        CallStatus: ['ringing', 'in-progress', 'completed'][i % 3]!,
        From: '+15551230001',
        To: '+15551230002',
        Caller: 'ünïcødé ✓',
        Empty: '',
      };
      const theirs = twilio.getExpectedTwilioSignature(token, url, params);
      expect(computeTwilioSignature(token, url, params)).toBe(theirs);
      expect(verifyTwilioSignature(theirs, url, Object.entries(params), [token]).ok).toBe(true);
      expect(twilio.validateRequest(token, computeTwilioSignature(token, url, params), url, params)).toBe(true);
    }
  });

  it('@jambonz/sdk verifySignature accepts what we sign, and we accept what its scheme produces', () => {
    const secret = 'whsec_oracle_77';
    const verify = WebhookResponse.verifySignature(secret);
    for (let i = 0; i < 10; i++) {
      const body = JSON.stringify({ call_sid: randomUUID(), call_status: 'completed', duration: i, customerData: { a: 'é' } });
      const t = Math.floor(Date.now() / 1000);
      const header = signTimestampedHmac([secret], t, Buffer.from(body));
      let error: unknown = 'not called';
      verify({ headers: { 'jambonz-signature': header }, body: JSON.parse(body), rawBody: Buffer.from(body) } as never, {} as never, (err?: Error) => {
        error = err ?? null;
      });
      expect(error).toBeNull();
      expect(verifyTimestampedHmac(header, Buffer.from(body), [secret], t).ok).toBe(true);
      let rejected: unknown = null;
      try {
        verify({ headers: { 'jambonz-signature': signTimestampedHmac(['other'], t, Buffer.from(body)) }, body: JSON.parse(body) } as never, {} as never, (err?: Error) => {
          rejected = err ?? 'accepted';
        });
      } catch (err) {
        rejected = err;
      }
      expect(rejected).toBeInstanceOf(Error);
    }
  });
});
