import { sql } from 'kysely';
import twilio from 'twilio';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SECRETS, startTestApp, type TestApp } from '../support/test-app.js';
import { startStubApp, type StubApp } from '../support/stub-app.js';

/**
 * Voice URLs and callbacks configured with method GET (Twilio, Restcomm): the parameters come in the query, the
 * body is empty, and X-Twilio-Signature covers the full URL with its query and nothing else.
 *
 * The request is Twilio's voice webhook for an inbound call as documented at
 * https://www.twilio.com/docs/usage/webhooks/voice-webhooks (parameters CallSid, AccountSid, From, To, CallStatus,
 * ApiVersion, Direction, ForwardedFrom, CallerName, and the geographic From…/To… fields) sent with GET, which
 * "includes the parameters in the URL's query string" and is signed over that URL alone
 * (https://www.twilio.com/docs/usage/webhooks/webhooks-security#validating-signatures-from-twilio). The signature is
 * computed by the twilio-node SDK itself (getExpectedTwilioSignature with no body parameters), not by our signer.
 */
const LEDGER = 'https://ledger.example.com';
const TOKEN = SECRETS.TWILIO_AUTH_TOKEN;

let uniq = 0;
const voiceQuery = (callSid = `CA${String(++uniq).padStart(32, 'a')}`) =>
  new URLSearchParams({
    AccountSid: 'ACXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXXX',
    ApiVersion: '2010-04-01',
    CallSid: callSid,
    CallStatus: 'ringing',
    Called: '+15558675310',
    CalledCity: 'OAKLAND',
    CalledCountry: 'US',
    CalledState: 'CA',
    CalledZip: '94612',
    Caller: '+15017122661',
    CallerCity: 'SAN FRANCISCO',
    CallerCountry: 'US',
    CallerState: 'CA',
    CallerZip: '94105',
    Direction: 'inbound',
    From: '+15017122661',
    FromCity: 'SAN FRANCISCO',
    FromCountry: 'US',
    FromState: 'CA',
    FromZip: '94105',
    To: '+15558675310',
    ToCity: 'OAKLAND',
    ToCountry: 'US',
    ToState: 'CA',
    ToZip: '94612',
  }).toString();

/** A GET as Twilio sends it to `path?query`: signed by the SDK over the URL as configured, query included. */
const twilioGet = (path: string, query: string) => {
  const url = `${path}?${query}`;
  return { method: 'GET' as const, url, headers: { 'x-twilio-signature': twilio.getExpectedTwilioSignature(TOKEN, `${LEDGER}${url}`, {}) } };
};

let t: TestApp;
let stub: StubApp;
beforeAll(async () => {
  stub = await startStubApp(() => ({ status: 200, headers: { 'content-type': 'text/xml' }, body: '<Response><Dial timeout="15"><Number>+15551234567</Number></Dial></Response>' }));
  t = await startTestApp({ ...SECRETS, LEDGER_TEE_TWILIO_URL: `${stub.base}/tw` });
});
afterAll(async () => {
  await t.close();
  await stub.close();
});

const receipt = async (id: string) =>
  (await sql<{ body: Buffer; query: string; signature_status: string }>`SELECT body, query, signature_status FROM webhook_receipts WHERE id = ${id}::bigint`.execute(t.db.db)).rows[0]!;

describe('GET /v1/webhooks/:provider', () => {
  it('stores a Twilio GET voice request with its query verbatim and translates the query parameters', async () => {
    const query = voiceQuery();
    const res = await t.app.inject(twilioGet('/v1/webhooks/twilio/voice', query));
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ duplicate: false, events: ['CallInitiated', 'CallRinging'] });
    const r = await receipt(res.json().receiptId);
    expect(r.body.length).toBe(0);
    expect(r.query).toBe(query);
    expect(r.signature_status).toBe('verified');
  });

  it('two GET deliveries of two calls are two deliveries; the same GET again is a duplicate', async () => {
    const first = voiceQuery();
    const a = await t.app.inject(twilioGet('/v1/webhooks/twilio/voice', first));
    const b = await t.app.inject(twilioGet('/v1/webhooks/twilio/voice', voiceQuery()));
    expect(a.json().duplicate).toBe(false);
    expect(b.json().duplicate).toBe(false);
    expect(b.json().receiptId).not.toBe(a.json().receiptId);
    expect(b.json().events).toEqual(['CallInitiated', 'CallRinging']);
    const again = await t.app.inject(twilioGet('/v1/webhooks/twilio/voice', first));
    expect(again.json()).toMatchObject({ duplicate: true, receiptId: a.json().receiptId });
  });

  it('refuses a GET whose query was changed after signing (the signature covers the query)', async () => {
    const signed = twilioGet('/v1/webhooks/twilio/voice', voiceQuery());
    const res = await t.app.inject({ ...signed, url: signed.url.replace('CallStatus=ringing', 'CallStatus=completed') });
    expect(res.statusCode).toBe(401);
    expect(res.json().error.code).toBe('WEBHOOK.SIGNATURE_INVALID');
  });

  it('stores a Restcomm GET callback (token in the query, redacted) and translates its parameters', async () => {
    const sid = `IDe63fbd64e6e52e61d091a29ebda913cd-CA${String(++uniq).padStart(32, '0')}`;
    const query = `AccountSid=AC3400a93de0af06b7fac26e9762932f51&CallSid=${sid}&From=12125550100&To=13105550142&Direction=inbound&CallStatus=ringing&ApiVersion=2012-04-24`;
    const res = await t.app.inject({ method: 'GET', url: `/v1/webhooks/restcomm/voice?${query}&token=${encodeURIComponent(SECRETS.RESTCOMM_WEBHOOK_TOKEN)}` });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json().events).toEqual(['CallInitiated', 'CallRinging']);
    const r = await receipt(res.json().receiptId);
    expect(r.query).toBe(`${query}&token=%5Bredacted%5D`);
  });

  it('answers 405 ROUTE.METHOD_NOT_ALLOWED for a GET from a provider that only POSTs', async () => {
    for (const provider of ['freeclimb', 'jambonz']) {
      const res = await t.app.inject({ method: 'GET', url: `/v1/webhooks/${provider}/voice?callId=CA1` });
      expect(res.statusCode).toBe(405);
      expect(res.json()).toMatchObject({ error: { code: 'ROUTE.METHOD_NOT_ALLOWED', message: expect.stringContaining(provider) } });
    }
  });
});

describe('GET /v1/tee/twilio', () => {
  it('stores each GET delivery as its own receipt, and the app gets it signed again for its URL (checked with the SDK)', async () => {
    const before = stub.seen.length;
    const queries = [voiceQuery(), voiceQuery()];
    for (const q of queries) {
      const res = await t.app.inject(twilioGet('/v1/tee/twilio/voice', q));
      expect(res.statusCode, res.body).toBe(200);
      expect(res.body).toContain('<Dial timeout="15">');
    }
    const seen = stub.seen.slice(before);
    expect(seen.map((s) => s.url)).toEqual(queries.map((q) => `/tw/voice?${q}`));
    for (const s of seen) {
      expect(s.method).toBe('GET');
      expect(twilio.validateRequest(TOKEN, String(s.headers['x-twilio-signature']), `${stub.base}${s.url}`, {})).toBe(true);
    }
    const stored = await sql<{ query: string }>`
      SELECT query FROM webhook_receipts WHERE provider = 'twilio' AND source = 'live' AND path = 'voice' AND query = ANY(${queries}::text[])`.execute(t.db.db);
    expect(stored.rows.map((r) => r.query).sort()).toEqual([...queries].sort());
  });
});
