import { computeTwilioSignature, signTimestampedHmac } from '@lib/providers';
import type { Delivery } from './delivery.js';

export interface SigningSecrets {
  freeclimb?: string;
  jambonz?: string;
  twilio?: string;
  restcomm?: string;
}

export interface SignedDelivery {
  /** Path and query as the ledger receives them: `/v1/webhooks/<provider>[/sub][?query]`. */
  url: string;
  headers: Record<string, string>;
  body: Buffer;
}

/**
 * Signs a delivery the way its provider does, with the production signature code of libs/providers, so that a
 * simulated request is accepted exactly when a real one would be:
 * - FreeClimb / jambonz: `t=<sent second>,v1=HMAC-SHA256(secret, t.body)` (docs/providers.md, "Signatures"). `t` is the simulated send
 *   time, so a retry carries the original's header byte for byte.
 * - Twilio: X-Twilio-Signature over the *public* URL plus the sorted form fields (docs/providers.md, "Signatures").
 * - Restcomm: does not sign; the shared token rides in `?token=` (README, "Webhook URLs").
 * `route: 'tee'` sends it to the ledger's tee route instead (the app behind the ledger answers).
 * A provider without a secret is sent unsigned (the ledger then marks it unverified, if it accepts it at all).
 */
export function signDelivery(d: Delivery, secrets: SigningSecrets, publicUrl: string, route: 'webhooks' | 'tee' = 'webhooks'): SignedDelivery {
  const body = Buffer.from(d.body, 'utf8');
  let query = d.query;
  const headers: Record<string, string> = { 'content-type': d.contentType };
  const t = Math.floor(d.sentAtMs / 1000);
  switch (d.provider) {
    case 'freeclimb':
      if (secrets.freeclimb) headers['freeclimb-signature'] = signTimestampedHmac([secrets.freeclimb], t, body);
      break;
    case 'jambonz':
      if (secrets.jambonz) headers['jambonz-signature'] = signTimestampedHmac([secrets.jambonz], t, body);
      break;
    case 'restcomm':
      if (secrets.restcomm) query = `${query ? `${query}&` : ''}token=${encodeURIComponent(secrets.restcomm)}`;
      break;
    case 'twilio':
      break;
  }
  const url = `/v1/${route}/${d.provider}${d.path}${query ? `?${query}` : ''}`;
  if (d.provider === 'twilio' && secrets.twilio) {
    const pairs = [...new URLSearchParams(d.body).entries()];
    headers['x-twilio-signature'] = computeTwilioSignature(secrets.twilio, publicUrl.replace(/\/+$/, '') + url, pairs);
  }
  return { url, headers, body };
}
