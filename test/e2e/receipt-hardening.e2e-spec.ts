import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeTwilioSignature } from '@lib/providers';
import { API_KEY, readyProjector, SECRETS, startTestApp, type TestApp } from '../support/test-app.js';
import { freeclimbRequest, restcommRequest } from '../support/signing.js';

/**
 * Receipts (issue 10): a form delivery is the same delivery whatever the byte form of its signed parameter list;
 * the Restcomm token is redacted however its name is spelled, on import too; a full signature is never served.
 */
let t: TestApp;
beforeAll(async () => {
  t = await startTestApp(SECRETS);
  await readyProjector(t);
});
afterAll(async () => t.close());

const auth = { authorization: `Bearer ${API_KEY}` };
const receipts = async () => Number((await t.db.db.selectFrom('webhook_receipts').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()).n);

describe('form deliveries deduplicated on their signed parameters', () => {
  const params: [string, string][] = [
    ['AccountSid', 'AC1'],
    ['ApiVersion', '2010-04-01'],
    ['CallSid', 'CAdedupe1'],
    ['CallStatus', 'in-progress'],
    ['Direction', 'inbound'],
    ['From', '+15551230001'],
    ['To', '+15551230002'],
  ];
  const url = '/v1/webhooks/twilio/status';
  const signature = computeTwilioSignature(SECRETS.TWILIO_AUTH_TOKEN, `https://ledger.example.com${url}`, params);
  const send = (body: string) =>
    t.app.inject({ method: 'POST', url, headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': signature }, payload: body });
  const form = (pairs: [string, string][]) => new URLSearchParams(pairs).toString();

  it('answers a replay with the fields reordered, a trailing &, a repeated pair or a value merged into the next key as a duplicate', async () => {
    const first = await send(form(params));
    expect(first.statusCode).toBe(200);
    expect(first.json()).toMatchObject({ duplicate: false });
    const before = await receipts();
    const variants = [
      form([...params].reverse()),
      `${form(params)}&`,
      form([...params, ['CallStatus', 'in-progress']]),
      // "CallStatus"+"in-progress"+"Direction"+"inbound" is what the signature covers either way: a phantom leg otherwise.
      form(params.filter(([k]) => k !== 'Direction').map(([k, v]): [string, string] => (k === 'CallStatus' ? [k, `${v}Directioninbound`] : [k, v]))),
    ];
    for (const body of variants) {
      const res = await send(body);
      expect(res.statusCode, body).toBe(200);
      expect(res.json(), body).toEqual({ ...first.json(), duplicate: true });
    }
    expect(await receipts()).toBe(before);
  });

  it('keeps two different values of one key apart (they sign differently)', async () => {
    const other = params.map(([k, v]): [string, string] => (k === 'CallStatus' ? [k, 'completed'] : [k, v]));
    const res = await t.app.inject({
      method: 'POST',
      url,
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': computeTwilioSignature(SECRETS.TWILIO_AUTH_TOKEN, `https://ledger.example.com${url}`, other) },
      payload: form(other),
    });
    expect(res.json()).toMatchObject({ duplicate: false });
  });
});

describe('the Restcomm token is never stored', () => {
  const rcBody = (n: number) => `AccountSid=AC2&CallSid=CAredact${n}&CallStatus=ringing&Direction=inbound&From=%2B1&To=%2B2`;

  it('is redacted from a live query when its name is percent-encoded', async () => {
    const token = encodeURIComponent(SECRETS.RESTCOMM_WEBHOOK_TOKEN);
    for (const [i, query] of [`tenant=acme&%74oken=${token}`, `tok%65n=${token}&tenant=acme`].entries()) {
      const res = await t.app.inject({ method: 'POST', url: `/v1/webhooks/restcomm/status?${query}`, headers: restcommRequest('').headers, payload: rcBody(i) });
      expect(res.statusCode, res.body).toBe(200);
      const row = await t.db.db.selectFrom('webhook_receipts').select('query').where('id', '=', res.json().receiptId).executeTakeFirstOrThrow();
      expect(row.query).not.toContain(SECRETS.RESTCOMM_WEBHOOK_TOKEN);
      expect(row.query.split('&')).toContain('token=%5Bredacted%5D');
      expect(row.query.split('&')).toContain('tenant=acme');
    }
  });

  it('is redacted from an imported query, under either spelling', async () => {
    const lines = ['token=s3cret&x=1', 'x=2&%74oken=s3cret'].map((query, i) =>
      JSON.stringify({ provider: 'restcomm', receivedAt: '2026-01-05T14:05:51Z', contentType: 'application/x-www-form-urlencoded', body: rcBody(100 + i), query }),
    );
    const res = await t.app.inject({ method: 'POST', url: '/v1/import', headers: { 'content-type': 'application/x-ndjson', ...auth }, payload: `${lines.join('\n')}\n` });
    expect(res.json()).toMatchObject({ imported: 2, rejected: [] });
    const rows = await t.db.db.selectFrom('webhook_receipts').select('query').where('source', '=', 'import').orderBy('id').execute();
    expect(rows.map((r) => r.query).sort()).toEqual(['token=%5Bredacted%5D&x=1', 'x=2&token=%5Bredacted%5D']);
  });
});

describe('GET /v1/calls/{callId}/events', () => {
  it('serves a fingerprint of the signature header, never the signature', async () => {
    const req = freeclimbRequest(JSON.stringify({ accountId: 'AC1', callId: 'CAfingerprint', callStatus: 'ringing', direction: 'inbound', from: '+1', to: '+2', parentCallId: null, requestType: 'inboundCall' }));
    const receipt = (await t.app.inject({ method: 'POST', url: req.url, headers: req.headers, payload: req.payload })).json();
    const res = await t.app.inject({ method: 'GET', url: `/v1/calls/CAfingerprint/events?minPosition=${receipt.position}`, headers: auth });
    expect(res.statusCode, res.body).toBe(200);
    const header = req.headers['freeclimb-signature']!;
    expect(res.body).not.toContain(header.split('v1=')[1]!);
    expect(res.json().data[0].receipt.signature.header).toMatch(/^sha256:[0-9a-f]{16}$/);
  });
});
