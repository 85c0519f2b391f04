import { computeTwilioSignature, signTimestampedHmac } from '@lib/providers';
import { SECRETS } from './test-app.js';

export const nowSec = () => Math.floor(Date.now() / 1000);

export interface SignedRequest {
  url: string;
  headers: Record<string, string>;
  payload: Buffer;
}

/** FreeClimb and jambonz share the `t=…,v1=…` HMAC-SHA256 scheme; only the route and header name differ. */
const timestampedRequest = (provider: 'freeclimb' | 'jambonz', header: string, body: string | Buffer, path: string, t: number, secret: string): SignedRequest => {
  const payload = Buffer.from(body);
  return {
    url: `/v1/webhooks/${provider}${path}`,
    headers: { 'content-type': 'application/json', [header]: signTimestampedHmac([secret], t, payload) },
    payload,
  };
};

export const freeclimbRequest = (body: string | Buffer, path = '', t = nowSec(), secret = SECRETS.FREECLIMB_SIGNING_SECRET): SignedRequest =>
  timestampedRequest('freeclimb', 'freeclimb-signature', body, path, t, secret);

export const jambonzRequest = (body: string | Buffer, path = '/status', t = nowSec(), secret = SECRETS.JAMBONZ_WEBHOOK_SECRET): SignedRequest =>
  timestampedRequest('jambonz', 'jambonz-signature', body, path, t, secret);

export const twilioRequest = (params: Record<string, string>, path = '/status', token = SECRETS.TWILIO_AUTH_TOKEN): SignedRequest => {
  const url = `/v1/webhooks/twilio${path}`;
  const payload = Buffer.from(new URLSearchParams(params).toString());
  return {
    url,
    headers: {
      'content-type': 'application/x-www-form-urlencoded',
      'x-twilio-signature': computeTwilioSignature(token, `https://ledger.example.com${url}`, Object.entries(params)),
    },
    payload,
  };
};

export const restcommRequest = (body: string, path = '/status', token = SECRETS.RESTCOMM_WEBHOOK_TOKEN): SignedRequest => ({
  url: `/v1/webhooks/restcomm${path}${path.includes('?') ? '&' : '?'}token=${encodeURIComponent(token)}`,
  headers: { 'content-type': 'application/x-www-form-urlencoded; charset=UTF-8' },
  payload: Buffer.from(body),
});
