import { computeTwilioSignature, signTimestampedHmac } from '@lib/providers';
import { SECRETS } from './test-app.js';

export const nowSec = () => Math.floor(Date.now() / 1000);

export interface SignedRequest {
  url: string;
  headers: Record<string, string>;
  payload: Buffer;
}

export const freeclimbRequest = (body: string | Buffer, path = '', t = nowSec(), secret = SECRETS.FREECLIMB_SIGNING_SECRET): SignedRequest => {
  const payload = Buffer.from(body);
  return {
    url: `/v1/webhooks/freeclimb${path}`,
    headers: { 'content-type': 'application/json', 'freeclimb-signature': signTimestampedHmac([secret], t, payload) },
    payload,
  };
};

export const jambonzRequest = (body: string | Buffer, path = '/status', t = nowSec(), secret = SECRETS.JAMBONZ_WEBHOOK_SECRET): SignedRequest => {
  const payload = Buffer.from(body);
  return {
    url: `/v1/webhooks/jambonz${path}`,
    headers: { 'content-type': 'application/json', 'jambonz-signature': signTimestampedHmac([secret], t, payload) },
    payload,
  };
};

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
