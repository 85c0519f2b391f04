import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { API_KEY, SECRETS, startTestApp, type TestApp } from '../support/test-app.js';
import { freeclimbRequest, jambonzRequest, nowSec, restcommRequest, twilioRequest, type SignedRequest } from '../support/signing.js';

let t: TestApp;
beforeAll(async () => {
  t = await startTestApp(SECRETS);
});
afterAll(async () => t.close());

const post = (r: SignedRequest) => t.app.inject({ method: 'POST', url: r.url, headers: r.headers, payload: r.payload });
const counts = async () => {
  const r = await sql<{ events: string; receipts: string }>`SELECT (SELECT count(*) FROM events) AS events, (SELECT count(*) FROM webhook_receipts) AS receipts`.execute(t.db.db);
  return { events: Number(r.rows[0]!.events), receipts: Number(r.rows[0]!.receipts) };
};

let uniq = 0;
const fcInbound = () =>
  JSON.stringify({
    accountId: 'ACe511f7e60a7aaec1435ac251c24f6bd698d8dd14',
    callId: `CA${String(++uniq).padStart(40, '0')}`,
    callStatus: 'ringing',
    conferenceId: null,
    direction: 'inbound',
    from: '+13125550147',
    parentCallId: null,
    queueId: null,
    requestType: 'inboundCall',
    to: '+13125550100',
  });

const jzStatus = (status = 'in-progress') =>
  JSON.stringify({
    call_sid: `9ce83374-b6e8-4114-b7cb-${String(++uniq).padStart(12, '0')}`,
    direction: 'outbound',
    from: '+14155550123',
    to: '+16175550142',
    call_id: '1f2a3b4c-7c41-123e-9e1b-0a58a9feac02',
    sip_status: 200,
    sip_reason: 'OK',
    call_status: status,
    account_sid: 'a749fdf4-139c-426a-83af-461f6bdd3f5c',
    application_sid: '6dc3f73c-423a-4983-ad05-6d36abdcdde0',
    parent_call_sid: '4754abdd-3a32-4c0c-91f5-8b1ed1740d2a',
  });

const rcProgress = () =>
  `InstanceId=IDe63fbd64e6e52e61d091a29ebda913cd&AccountSid=AC3400a93de0af06b7fac26e9762932f51&CallSid=IDe63fbd64e6e52e61d091a29ebda913cd-CA${String(++uniq).padStart(32, '0')}` +
  `&From=12125550100&To=13105550142&Direction=outbound-dial&CallerName=12125550100&ForwardedFrom` +
  `&ParentCallSid=IDe63fbd64e6e52e61d091a29ebda913cd-CA5a6782f238f8f435013bdb74e077ea2e&CallStatus=ringing` +
  `&Timestamp=Mon%2C+05+Jan+2026+14%3A05%3A51+UTC&CallbackSource=call-progress-events&SequenceNumber=1`;

describe('POST /v1/webhooks/:provider', () => {
  it.each([
    ['freeclimb', () => freeclimbRequest(fcInbound(), '/voice'), ['CallInitiated', 'CallRinging']],
    ['jambonz', () => jambonzRequest(jzStatus()), ['CallAnswered']],
    ['restcomm', () => restcommRequest(rcProgress()), ['CallRinging']],
    [
      'twilio',
      () => twilioRequest({ AccountSid: 'AC1', CallSid: `CA${++uniq}`, CallStatus: 'in-progress', Direction: 'inbound', From: '+1555', To: '+1666', ApiVersion: '2010-04-01' }, '/voice?tenant=acme'),
      ['CallInitiated', 'CallAnswered'],
    ],
  ] as const)('%s: a signed delivery is committed, then answered with its receipt', async (_p, make, types) => {
    const req = make();
    const before = await counts();
    const res = await post(req);
    expect(res.statusCode).toBe(200);
    const receipt = res.json();
    expect(receipt).toMatchObject({ receiptId: expect.stringMatching(/^\d+$/), position: expect.stringMatching(/^\d+$/), duplicate: false });
    expect(receipt.events).toEqual(expect.arrayContaining([...types]));
    const after = await counts();
    expect(after.receipts).toBe(before.receipts + 1);
    expect(after.events).toBe(before.events + receipt.events.length);
    const stored = await t.db.db.selectFrom('webhook_receipts').selectAll().where('id', '=', receipt.receiptId).executeTakeFirstOrThrow();
    expect(stored.body.equals(req.payload)).toBe(true);
    expect(stored.signature_status).toBe('verified');
    const last = await t.db.db.selectFrom('events').select(['global_position', 'receipt_id']).where('global_position', '=', receipt.position).executeTakeFirstOrThrow();
    expect(String(last.receipt_id)).toBe(receipt.receiptId);
  });

  it('keeps sub-path, query (minus credentials), allowed headers, remote address and the signature timestamp', async () => {
    const t0 = nowSec() - 10;
    const req = freeclimbRequest(fcInbound(), '/hooks/status?app=ivr', t0);
    const res = await t.app.inject({ method: 'POST', url: req.url, headers: { ...req.headers, authorization: 'Bearer secret', 'x-request-id': 'r-1' }, payload: req.payload, remoteAddress: '203.0.113.9' });
    const stored = await t.db.db.selectFrom('webhook_receipts').selectAll().where('id', '=', res.json().receiptId).executeTakeFirstOrThrow();
    expect(stored).toMatchObject({ path: 'hooks/status', query: 'app=ivr', remote_addr: '203.0.113.9', content_type: 'application/json', source: 'live' });
    expect(stored.signature_timestamp?.getTime()).toBe(t0 * 1000);
    expect(stored.headers).toMatchObject({ 'x-request-id': 'r-1', 'content-type': 'application/json' });
    expect(stored.headers).not.toHaveProperty('authorization');
    const rc = await post(restcommRequest(rcProgress(), '/status?tenant=acme'));
    const rcRow = await t.db.db.selectFrom('webhook_receipts').select('query').where('id', '=', rc.json().receiptId).executeTakeFirstOrThrow();
    expect(rcRow.query).toBe('tenant=acme&token=%5Bredacted%5D');
  });

  it('answers the same delivery again as a duplicate with the original receipt and position, appending nothing', async () => {
    const req = jambonzRequest(jzStatus('completed'));
    const first = (await post(req)).json();
    const before = await counts();
    const again = await post(req);
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual({ ...first, duplicate: true });
    expect(await counts()).toEqual(before);
  });

  it('lets exactly one of many simultaneous copies append', async () => {
    const req = freeclimbRequest(fcInbound());
    const before = await counts();
    const answers = await Promise.all(Array.from({ length: 12 }, () => post(req)));
    expect(answers.every((a) => a.statusCode === 200)).toBe(true);
    const bodies = answers.map((a) => a.json());
    expect(bodies.filter((b) => !b.duplicate)).toHaveLength(1);
    expect(new Set(bodies.map((b) => b.position)).size).toBe(1);
    expect((await counts()).receipts).toBe(before.receipts + 1);
  });

  it('keeps an authentic body it cannot parse verbatim, as UnrecognizedWebhook with the reason', async () => {
    const garbage = Buffer.concat([Buffer.from('{"requestType": "inboundCall", '), Buffer.from([0xff, 0xfe]), Buffer.from(' oops')]);
    const res = await post(freeclimbRequest(garbage));
    expect(res.statusCode).toBe(200);
    expect(res.json().events).toEqual(['UnrecognizedWebhook']);
    const stored = await t.db.db.selectFrom('webhook_receipts').select('body').where('id', '=', res.json().receiptId).executeTakeFirstOrThrow();
    expect(stored.body.equals(garbage)).toBe(true);
    const event = await t.db.db.selectFrom('events').select(['data', 'stream_name']).where('global_position', '=', res.json().position).executeTakeFirstOrThrow();
    expect(event.stream_name).toBe('unrecognized-freeclimb');
    expect((event.data as { reason: string }).reason).toMatch(/UTF-8/);
  });

  describe('refused with 401 and nothing appended', () => {
    const body = () => fcInbound();
    it.each([
      ['a missing signature', () => ({ ...freeclimbRequest(body()), headers: { 'content-type': 'application/json' } })],
      ['a wrong signature', () => freeclimbRequest(body(), '', nowSec(), 'not-the-secret')],
      ['a stale timestamp (6 minutes old)', () => freeclimbRequest(body(), '', nowSec() - 360)],
      ['a future timestamp (6 minutes ahead)', () => freeclimbRequest(body(), '', nowSec() + 360)],
      ['a tampered body', () => ({ ...freeclimbRequest(body()), payload: Buffer.from(body()) })],
      ['a wrong jambonz signature', () => jambonzRequest(jzStatus(), '/status', nowSec(), 'whsec_wrong')],
      ['a wrong twilio signature', () => twilioRequest({ CallSid: 'CA9', CallStatus: 'ringing' }, '/status', 'wrong-token')],
      ['a missing restcomm token', () => ({ ...restcommRequest(rcProgress()), url: '/v1/webhooks/restcomm/status' })],
      ['a wrong restcomm token', () => restcommRequest(rcProgress(), '/status', 'nope')],
    ])('%s', async (_label, make) => {
      const before = await counts();
      const res = await post(make());
      expect(res.statusCode).toBe(401);
      expect(res.json()).toMatchObject({ error: { code: 'WEBHOOK.SIGNATURE_INVALID', message: expect.any(String) } });
      expect(await counts()).toEqual(before);
    });

    it('counts refusals and keeps their metadata, never bodies or signatures', async () => {
      const req = freeclimbRequest('{"secretish":"body-content-42"}', '', nowSec(), 'bad-secret');
      await post(req);
      const log = await t.app.inject({ method: 'GET', url: '/v1/admin/webhook-rejections', headers: { authorization: `Bearer ${API_KEY}` } });
      expect(log.statusCode).toBe(200);
      const text = log.body;
      expect(log.json().total).toBeGreaterThan(0);
      expect(log.json().recent[0]).toMatchObject({ provider: 'freeclimb', reason: expect.stringContaining('does not match') });
      expect(text).not.toContain('body-content-42');
      expect(text).not.toContain(req.headers['freeclimb-signature']!.split('v1=')[1]);
      const metrics = await t.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${API_KEY}` } });
      expect(metrics.body).toMatch(/ledger_webhook_rejections_total\{provider="freeclimb"\} \d+/);
    });
  });

  it('accepts a secondary secret (rotation)', async () => {
    const r = await startTestApp({ ...SECRETS, FREECLIMB_SIGNING_SECRET: `old-secret-0123456789, ${SECRETS.FREECLIMB_SIGNING_SECRET}` });
    try {
      const req = freeclimbRequest(fcInbound());
      const res = await r.app.inject({ method: 'POST', url: req.url, headers: req.headers, payload: req.payload });
      expect(res.statusCode).toBe(200);
    } finally {
      await r.close();
    }
  });

  it('refuses deliveries of a provider with no secret configured, unless LEDGER_ACCEPT_UNSIGNED lists it (then marked unverified)', async () => {
    const closed = await startTestApp({});
    try {
      const res = await closed.app.inject({ method: 'POST', url: '/v1/webhooks/jambonz/status', headers: { 'content-type': 'application/json' }, payload: jzStatus() });
      expect(res.statusCode).toBe(403);
      expect(res.json().error.code).toBe('WEBHOOK.PROVIDER_NOT_CONFIGURED');
    } finally {
      await closed.close();
    }
    const r = await startTestApp({ LEDGER_ACCEPT_UNSIGNED: 'jambonz' });
    try {
      const res = await r.app.inject({ method: 'POST', url: '/v1/webhooks/jambonz/status', headers: { 'content-type': 'application/json' }, payload: jzStatus() });
      expect(res.statusCode).toBe(200);
      const row = await r.db.db.selectFrom('webhook_receipts').select('signature_status').where('id', '=', res.json().receiptId).executeTakeFirstOrThrow();
      expect(row.signature_status).toBe('unverified');
    } finally {
      await r.close();
    }
  });

  describe('bad input gets a JSON error, never a 500', () => {
    it('413 for a body over 1 MiB, nothing appended', async () => {
      const before = await counts();
      const big = Buffer.alloc(1024 * 1024 + 1, 0x61);
      const res = await post(freeclimbRequest(big));
      expect(res.statusCode).toBe(413);
      expect(res.json()).toMatchObject({ error: { code: 'REQUEST.BODY_TOO_LARGE' } });
      expect(await counts()).toEqual(before);
    });

    it('404 for an unknown provider', async () => {
      const res = await t.app.inject({ method: 'POST', url: '/v1/webhooks/plivo/status', headers: { 'content-type': 'application/json' }, payload: '{}' });
      expect(res.statusCode).toBe(404);
      expect(res.json()).toMatchObject({ error: { code: 'WEBHOOK.PROVIDER_UNKNOWN', message: expect.stringContaining('plivo') } });
    });

    it('404 JSON for an unknown route and 405/404 for a wrong method', async () => {
      const res = await t.app.inject({ method: 'GET', url: '/v1/nothing-here' });
      expect(res.statusCode).toBe(404);
      expect(res.json()).toMatchObject({ error: { code: expect.any(String), message: expect.any(String) } });
      const get = await t.app.inject({ method: 'GET', url: '/v1/webhooks/freeclimb' });
      expect([404, 405]).toContain(get.statusCode);
      expect(get.json().error.code).toBeDefined();
    });

    it('a signed delivery with an empty or malformed Content-Type is kept byte for byte and translated from its bytes', async () => {
      for (const [declared, stored] of [['', null], ['   ', null], [';;;', ';;;'], ['json', 'json']] as const) {
        const r = freeclimbRequest(fcInbound());
        const res = await post({ ...r, headers: { ...r.headers, 'content-type': declared } });
        expect(res.statusCode, `content-type ${JSON.stringify(declared)}: ${res.body}`).toBe(200);
        expect(res.json().events).toEqual(['CallInitiated', 'CallRinging']);
        const row = await t.db.db.selectFrom('webhook_receipts').selectAll().where('id', '=', res.json().receiptId).executeTakeFirstOrThrow();
        expect(row.content_type).toBe(stored);
        expect(Buffer.from(row.body).equals(r.payload)).toBe(true);
      }
      // Without the header at all, and a body that is not JSON: kept, as unrecognized.
      const r = freeclimbRequest('<<not json>>');
      const { 'content-type': _, ...headers } = r.headers;
      const res = await post({ ...r, headers });
      expect(res.statusCode).toBe(200);
      expect(res.json().events).toEqual(['UnrecognizedWebhook']);
      const row = await t.db.db.selectFrom('webhook_receipts').selectAll().where('id', '=', res.json().receiptId).executeTakeFirstOrThrow();
      expect(row.content_type).toBeNull();
    });

    it('a body-less POST with a valid signature over the empty body is kept as unrecognized', async () => {
      const res = await post(freeclimbRequest(''));
      expect(res.statusCode).toBe(200);
      expect(res.json().events).toEqual(['UnrecognizedWebhook']);
    });

    it('an oversized content-length is refused before reading', async () => {
      // With a signature header: an unsigned one is refused (401) before its size is even looked at.
      const res = await t.app.inject({ method: 'POST', url: '/v1/webhooks/jambonz', headers: { 'content-type': 'application/json', 'content-length': String(5 * 1024 * 1024), 'jambonz-signature': 't=1,v1=00' }, payload: '{}' });
      expect([400, 413]).toContain(res.statusCode);
      expect(res.json().error).toBeDefined();
    });
  });
});

describe('GET /health', () => {
  it('is 200 when the database answers and migrations are applied', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/health' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ status: 'ok' });
  });
});
