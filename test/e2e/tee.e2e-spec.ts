import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyAuditExport } from '@lib/event-store';
import { computeTwilioSignature, ProviderRegistry } from '@lib/providers';
import { API_KEY, SECRETS, startTestApp, type TestApp } from '../support/test-app.js';
import { freeclimbRequest, jambonzRequest, nowSec, twilioRequest } from '../support/signing.js';
import { startStubApp, type StubApp, type StubRequest } from '../support/stub-app.js';

/**
 * Tee mode against a real local app per dialect: the provider gets the app's answer unchanged, the app sees
 * the delivery as the provider sent it (and its signature verifies there), and the answer is kept in the chain.
 */
const ACC = 'ACe511f7e60a7aaec1435ac251c24f6bd698d8dd14';
const auth = { authorization: `Bearer ${API_KEY}` };

// Real command shapes, from the providers' docs (docs/app-answers.md).
const PERCL = JSON.stringify([
  { Say: { text: 'Connecting you now' } },
  { OutDial: { destination: '+18475722071', callingNumber: '+17113334444', timeout: 40, ifMachine: 'hangup', callConnectUrl: 'http://www.example.com/OutDialEstablished', actionUrl: 'http://www.example.com/OutDialSpawned' } },
]);
const JAMBONZ_DIAL = JSON.stringify([
  {
    verb: 'dial',
    actionHook: '/outdial',
    callerId: '+16173331212',
    answerOnBridge: true,
    timeout: 20,
    target: [
      { type: 'phone', number: '+15083084809' },
      { type: 'sip', sipUri: 'sip:1617333456@sip.trunk1.com', auth: { user: 'foo', password: 'bar-secret-pw' } },
      { type: 'user', name: 'spike@sip.example.com' },
    ],
  },
]);
const RCML_DIAL =
  '<?xml version="1.0" encoding="UTF-8"?>\n<Response><Say>Please hold</Say><Dial timeout="20" timeLimit="600" callerId="+15550001111" record="true" action="/dial-done">' +
  '<Number>+15551234567</Number><Sip username="alice" password="s3cret-sip">sip:alice@pbx.example.com</Sip></Dial></Response>';

let t: TestApp;
let stub: StubApp;
let answerFor: (r: StubRequest) => { status?: number; headers?: Record<string, string>; body?: string; after?: Promise<unknown> };
/** What the app would check: the same secrets, its own URL. */
let appSide: ProviderRegistry;
let release: () => void = () => undefined;

beforeAll(async () => {
  stub = await startStubApp((r) => answerFor(r));
  appSide = new ProviderRegistry(
    { freeclimb: [SECRETS.FREECLIMB_SIGNING_SECRET], jambonz: [SECRETS.JAMBONZ_WEBHOOK_SECRET], twilio: [SECRETS.TWILIO_AUTH_TOKEN], restcomm: [SECRETS.RESTCOMM_WEBHOOK_TOKEN] },
    stub.base,
  );
  t = await startTestApp({
    ...SECRETS,
    LEDGER_TEE_FREECLIMB_URL: `${stub.base}/fc`,
    LEDGER_TEE_JAMBONZ_URL: `${stub.base}/jz/`,
    LEDGER_TEE_TWILIO_URL: `${stub.base}/tw`,
    // Nothing listens there: a dead app.
    LEDGER_TEE_RESTCOMM_URL: 'http://127.0.0.1:9/rc',
    LEDGER_TEE_TIMEOUT_MS: '400',
  });
});
afterAll(async () => {
  release();
  await t.close();
  await stub.close();
});

const answers = async () =>
  (
    await sql<{ id: string; body: Buffer; provider: string; path: string; source: string }>`
      SELECT id::text, body, provider, path, source FROM webhook_receipts WHERE source = 'answer' ORDER BY id`.execute(t.db.db)
  ).rows;
const answerEvents = async (stream: string) =>
  (await sql<{ type: string; data: any; receipt_id: string }>`SELECT type, data, receipt_id::text FROM events WHERE stream_name = ${stream} ORDER BY stream_version`.execute(t.db.db)).rows;
/** The answer is stored after the provider has its reply: wait for it as a condition, never a sleep. */
const waitFor = async <T>(f: () => Promise<T | undefined | null | false>, what: string): Promise<T> => {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
};
const appVerdict = (provider: 'freeclimb' | 'jambonz' | 'twilio', r: StubRequest) =>
  appSide.get(provider).verify({ rawBody: r.body, headers: r.headers, url: r.url, nowSec: nowSec() });

describe('tee: FreeClimb PerCL', () => {
  it('forwards the delivery as sent (signature verifies at the app) and answers the provider with the app answer unchanged', async () => {
    answerFor = () => ({ status: 200, headers: { 'content-type': 'application/json; charset=utf-8', 'x-app-internal': 'no' }, body: PERCL });
    const body = JSON.stringify({ accountId: ACC, callId: 'CA-tee-fc-1', parentCallId: null, from: '+13125550147', to: '+13125550100', callStatus: 'ringing', direction: 'inbound', requestType: 'inboundCall', conferenceId: null, queueId: null });
    const req = freeclimbRequest(body, '/voice');
    const res = await t.app.inject({
      method: 'POST',
      url: req.url.replace('/v1/webhooks/', '/v1/tee/') + '?lang=en',
      headers: { ...req.headers, connection: 'keep-alive, x-hop', 'x-hop': 'secret-hop', 'proxy-authorization': 'Basic eDp5' },
      payload: req.payload,
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('application/json; charset=utf-8');
    expect(res.body).toBe(PERCL);
    expect(res.headers['x-app-internal']).toBeUndefined();

    const seen = stub.seen.at(-1)!;
    expect(seen.method).toBe('POST');
    expect(seen.url).toBe('/fc/voice?lang=en');
    expect(seen.body.equals(req.payload)).toBe(true);
    expect(seen.headers['x-hop']).toBeUndefined();
    expect(seen.headers['proxy-authorization']).toBeUndefined();
    expect(appVerdict('freeclimb', seen).status).toBe('verified');

    // The delivery is stored as a webhook is; the answer beside it, linked, parsed.
    const delivery = await sql<{ id: string }>`SELECT id::text FROM webhook_receipts WHERE source = 'live' AND body = ${req.payload}`.execute(t.db.db);
    expect(delivery.rows).toHaveLength(1);
    const events = await waitFor(async () => {
      const e = await answerEvents('appAnswers-freeclimb:CA-tee-fc-1');
      return e.length ? e : null;
    }, 'the FreeClimb answer');
    expect(events.map((e) => e.type)).toEqual(['AppAnswered', 'DialRequested']);
    expect(events[0]!.data).toMatchObject({ legId: 'CA-tee-fc-1', answersReceiptId: delivery.rows[0]!.id, outcome: 'answered', status: 200, parse: 'ok', instructions: ['Say', 'OutDial'], dialect: 'percl' });
    expect(events[1]!.data).toMatchObject({
      verb: 'OutDial',
      targets: [{ type: 'phone', value: '+18475722071' }],
      mode: 'single',
      ringTimeoutSec: 40,
      callerId: '+17113334444',
      amd: { ifMachine: 'hangup' },
      hooks: { action: 'http://www.example.com/OutDialSpawned', callConnect: 'http://www.example.com/OutDialEstablished' },
    });
    const stored = (await answers()).find((a) => a.id === events[0]!.receipt_id)!;
    const envelope = JSON.parse(stored.body.toString('utf8'));
    expect(envelope).toMatchObject({ body: PERCL, bodyEncoding: 'utf8', status: 200, headers: { 'content-type': 'application/json; charset=utf-8' }, redactions: [] });
    expect(envelope.headers['x-app-internal']).toBeUndefined();
  });
});

describe('tee: jambonz dial', () => {
  it('passes the jambonz signature through, and stores the answer with the SIP password redacted (and says so)', async () => {
    answerFor = () => ({ status: 200, headers: { 'content-type': 'application/json' }, body: JAMBONZ_DIAL });
    const body = JSON.stringify({ call_sid: 'jz-tee-1', account_sid: 'AC-jz', direction: 'inbound', from: '+1', to: '+2', call_status: 'ringing', sip_status: 180 });
    const req = jambonzRequest(body, '/call');
    const res = await t.app.inject({ method: 'POST', url: req.url.replace('/v1/webhooks/', '/v1/tee/'), headers: req.headers, payload: req.payload });
    expect(res.statusCode).toBe(200);
    // The provider gets the app's bytes, password included: redaction is of what the ledger keeps.
    expect(res.body).toBe(JAMBONZ_DIAL);
    const seen = stub.seen.at(-1)!;
    expect(seen.url).toBe('/jz/call');
    expect(appVerdict('jambonz', seen).status).toBe('verified');

    const events = await waitFor(async () => {
      const e = await answerEvents('appAnswers-jambonz:jz-tee-1');
      return e.length ? e : null;
    }, 'the jambonz answer');
    expect(events[0]!.data).toMatchObject({ instructions: ['dial'], redactions: ['[0].target[1].auth.password'] });
    expect(events[1]!.data).toMatchObject({
      mode: 'simultaneous',
      ringTimeoutSec: 20,
      callerId: '+16173331212',
      hooks: { action: '/outdial' },
      targets: [
        { type: 'phone', value: '+15083084809' },
        { type: 'sip', value: 'sip:1617333456@sip.trunk1.com' },
        { type: 'user', value: 'spike@sip.example.com' },
      ],
    });
    const raw = await sql<{ body: Buffer }>`SELECT body FROM webhook_receipts WHERE id = ${events[0]!.receipt_id}::bigint`.execute(t.db.db);
    const text = raw.rows[0]!.body.toString('utf8');
    expect(text).not.toContain('bar-secret-pw');
    expect(JSON.parse(text).redactions).toEqual([{ path: '[0].target[1].auth.password', reason: 'credential' }]);
  });
});

describe('tee: Twilio TwiML', () => {
  it('signs again for the app URL with the same auth token, and reads <Dial> with its nouns', async () => {
    answerFor = () => ({ status: 200, headers: { 'content-type': 'text/xml' }, body: RCML_DIAL });
    const params = { CallSid: 'CA-tee-tw-1', AccountSid: ACC, CallStatus: 'ringing', From: '+15550001111', To: '+15550002222', Direction: 'inbound', ApiVersion: '2010-04-01' };
    const req = twilioRequest(params, '/voice');
    // Signed for the ledger's tee URL, as Twilio would sign the URL it was configured with.
    const url = '/v1/tee/twilio/voice?step=1';
    const headers = { ...req.headers, 'x-twilio-signature': computeTwilioSignature(SECRETS.TWILIO_AUTH_TOKEN, `https://ledger.example.com${url}`, Object.entries(params)) };
    const res = await t.app.inject({ method: 'POST', url, headers, payload: req.payload });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/xml');
    expect(res.body).toBe(RCML_DIAL);
    const seen = stub.seen.at(-1)!;
    expect(seen.url).toBe('/tw/voice?step=1');
    expect(seen.headers['x-twilio-signature']).not.toBe(headers['x-twilio-signature']);
    expect(appVerdict('twilio', seen).status).toBe('verified');

    const events = await waitFor(async () => {
      const e = await answerEvents('appAnswers-twilio:CA-tee-tw-1');
      return e.length ? e : null;
    }, 'the Twilio answer');
    expect(events[0]!.data).toMatchObject({ instructions: ['Say', 'Dial'], redactions: ['Sip[0]@password'], dialect: 'rcml' });
    expect(events[1]!.data).toMatchObject({
      verb: 'Dial',
      mode: 'simultaneous',
      ringTimeoutSec: 20,
      timeLimitSec: 600,
      callerId: '+15550001111',
      record: true,
      hooks: { action: '/dial-done' },
      targets: [
        { type: 'phone', value: '+15551234567' },
        { type: 'sip', value: 'sip:alice@pbx.example.com' },
      ],
    });
    const raw = await sql<{ body: Buffer }>`SELECT body FROM webhook_receipts WHERE id = ${events[0]!.receipt_id}::bigint`.execute(t.db.db);
    const env = JSON.parse(raw.rows[0]!.body.toString('utf8'));
    expect(env.body).toContain('password="[redacted]"');
    expect(env.body).not.toContain('s3cret-sip');
  });

  it('tees a GET voice request (parameters in the query), signed again for the app URL', async () => {
    answerFor = () => ({ status: 200, headers: { 'content-type': 'application/xml' }, body: '<Response><Say>hi</Say></Response>' });
    const url = `/v1/tee/twilio/voice?${new URLSearchParams({ CallSid: 'CA-tee-get', AccountSid: ACC, CallStatus: 'ringing' })}`;
    const res = await t.app.inject({ method: 'GET', url, headers: { 'x-twilio-signature': computeTwilioSignature(SECRETS.TWILIO_AUTH_TOKEN, `https://ledger.example.com${url}`, []) } });
    expect(res.statusCode).toBe(200);
    expect(res.body).toBe('<Response><Say>hi</Say></Response>');
    const seen = stub.seen.at(-1)!;
    expect(seen.method).toBe('GET');
    expect(seen.url).toBe(url.replace('/v1/tee/twilio', '/tw'));
    expect(appVerdict('twilio', seen).status).toBe('verified');
  });

  it('refuses a delivery whose signature does not verify, and the app never sees it', async () => {
    const before = stub.seen.length;
    const req = twilioRequest({ CallSid: 'CA-tee-forged', AccountSid: ACC, CallStatus: 'ringing' }, '/voice');
    const res = await t.app.inject({ method: 'POST', url: '/v1/tee/twilio/voice', headers: req.headers, payload: req.payload });
    expect(res.statusCode).toBe(401);
    expect(stub.seen.length).toBe(before);
  });
});

describe('tee: answers that are not commands, slow and dead apps', () => {
  it('answers a status callback with what the app said, even without a content type', async () => {
    answerFor = () => ({ status: 200, body: 'OK' });
    const body = JSON.stringify({ accountId: ACC, callId: 'CA-tee-fc-status', parentCallId: null, from: '+1', to: '+2', callStatus: 'completed', direction: 'inbound', requestType: 'callStatus', conferenceId: null, queueId: null });
    const req = freeclimbRequest(body, '/status');
    const res = await t.app.inject({ method: 'POST', url: req.url.replace('/v1/webhooks/', '/v1/tee/'), headers: req.headers, payload: req.payload });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBeUndefined();
    expect(res.body).toBe('OK');
    const events = await waitFor(async () => {
      const e = await answerEvents('appAnswers-freeclimb:CA-tee-fc-status');
      return e.length ? e : null;
    }, 'the status callback answer');
    // Not PerCL: kept and marked, never guessed at.
    expect(events[0]!.data).toMatchObject({ outcome: 'answered', status: 200, contentType: null, parse: 'unparseable', instructions: [] });
  });

  it('keeps an unparseable answer and marks it, never dropping it', async () => {
    answerFor = () => ({ status: 200, headers: { 'content-type': 'application/json' }, body: '{"not": "percl"' });
    const body = JSON.stringify({ accountId: ACC, callId: 'CA-tee-fc-bad', parentCallId: null, from: '+1', to: '+2', callStatus: 'ringing', direction: 'inbound', requestType: 'inboundCall', conferenceId: null, queueId: null });
    const req = freeclimbRequest(body, '/voice');
    const res = await t.app.inject({ method: 'POST', url: req.url.replace('/v1/webhooks/', '/v1/tee/'), headers: req.headers, payload: req.payload });
    expect(res.body).toBe('{"not": "percl"');
    const events = await waitFor(async () => {
      const e = await answerEvents('appAnswers-freeclimb:CA-tee-fc-bad');
      return e.length ? e : null;
    }, 'the unparseable answer');
    expect(events.map((e) => e.type)).toEqual(['AppAnswered']);
    expect(events[0]!.data).toMatchObject({ parse: 'unparseable', parseError: expect.stringContaining('not JSON'), instructions: [] });
  });

  it('answers 504 when the app is too slow, and records the timeout', async () => {
    let go!: () => void;
    const gate = new Promise<void>((r) => (go = r));
    release = go;
    answerFor = () => ({ status: 200, body: '[]', after: gate });
    const body = JSON.stringify({ accountId: ACC, callId: 'CA-tee-slow', parentCallId: null, from: '+1', to: '+2', callStatus: 'ringing', direction: 'inbound', requestType: 'inboundCall', conferenceId: null, queueId: null });
    const req = freeclimbRequest(body, '/voice');
    const res = await t.app.inject({ method: 'POST', url: req.url.replace('/v1/webhooks/', '/v1/tee/'), headers: req.headers, payload: req.payload });
    go();
    expect(res.statusCode).toBe(504);
    expect(res.json().error.code).toBe('TEE.APP_TIMEOUT');
    const events = await waitFor(async () => {
      const e = await answerEvents('appAnswers-freeclimb:CA-tee-slow');
      return e.length ? e : null;
    }, 'the timeout record');
    expect(events[0]!.data).toMatchObject({ outcome: 'timeout', status: null, instructions: [] });
  });

  it('answers 502 when the app is down, and records it', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: `/v1/tee/restcomm/voice?token=${SECRETS.RESTCOMM_WEBHOOK_TOKEN}`,
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: `CallSid=CA-tee-rc-dead&AccountSid=${ACC}&CallStatus=ringing&From=%2B1&To=%2B2&Direction=inbound`,
    });
    expect(res.statusCode).toBe(502);
    expect(res.json().error.code).toBe('TEE.APP_UNREACHABLE');
    const events = await waitFor(async () => {
      const e = await answerEvents('appAnswers-restcomm:CA-tee-rc-dead');
      return e.length ? e : null;
    }, 'the unreachable record');
    expect(events[0]!.data).toMatchObject({ outcome: 'unreachable' });
  });

  it('refuses a provider with no app URL (404 TEE.NOT_CONFIGURED)', async () => {
    const t2 = await startTestApp(SECRETS);
    try {
      const req = freeclimbRequest(JSON.stringify({ accountId: ACC, callId: 'CA-x', requestType: 'inboundCall' }), '/voice');
      const res = await t2.app.inject({ method: 'POST', url: req.url.replace('/v1/webhooks/', '/v1/tee/'), headers: req.headers, payload: req.payload });
      expect(res.statusCode).toBe(404);
      expect(res.json().error.code).toBe('TEE.NOT_CONFIGURED');
    } finally {
      await t2.close();
    }
  });
});

describe('tee: the answers are in the hash chain', () => {
  it('/v1/audit/verify and the offline verifier check them, and an edited answer breaks its chain', async () => {
    const v = await t.app.inject({ method: 'GET', url: '/v1/audit/verify', headers: auth });
    expect(v.json()).toMatchObject({ valid: true });
    const exp = await t.app.inject({ method: 'GET', url: '/v1/audit/export', headers: auth });
    const lines = exp.body.trimEnd().split('\n');
    expect(lines.some((l) => l.includes('appAnswers-jambonz:jz-tee-1'))).toBe(true);
    expect((await verifyAuditExport(lines)).valid).toBe(true);

    const [first] = (await answerEvents('appAnswers-jambonz:jz-tee-1')).map((e) => ({ id: e.receipt_id }));
    await sql`ALTER TABLE webhook_receipts DISABLE TRIGGER USER`.execute(t.db.db);
    try {
      await sql`UPDATE webhook_receipts SET body = convert_to(replace(convert_from(body, 'UTF8'), '"status":200', '"status":500'), 'UTF8') WHERE id = ${first!.id}::bigint`.execute(t.db.db);
    } finally {
      await sql`ALTER TABLE webhook_receipts ENABLE TRIGGER USER`.execute(t.db.db);
    }
    const after = (await t.app.inject({ method: 'GET', url: '/v1/audit/verify', headers: auth })).json();
    expect(after.valid).toBe(false);
    expect(JSON.stringify(after)).toContain('appAnswers-');
    // A scope by call or by provider checks the leg's answers too.
    for (const scope of ['callId=jz-tee-1', 'provider=jambonz']) {
      const scoped = (await t.app.inject({ method: 'GET', url: `/v1/audit/verify?${scope}`, headers: auth })).json();
      expect(scoped.valid, scope).toBe(false);
      expect(scoped.broken.map((b: { streamName: string }) => b.streamName), scope).toContain('appAnswers-jambonz:jz-tee-1');
    }
    expect((await t.app.inject({ method: 'GET', url: '/v1/audit/verify?provider=freeclimb', headers: auth })).json().valid).toBe(true);
  });
});

describe('tee: intent beside outcome on the call tree', () => {
  const P = 'CA-intent-parent';
  const child = (sid: string, to: string, status: string, at: string, seq: number) => ({
    AccountSid: ACC,
    CallSid: sid,
    ParentCallSid: P,
    CallStatus: status,
    Direction: 'outbound-dial',
    From: '+15550001111',
    To: to,
    CallbackSource: 'call-progress-events',
    SequenceNumber: String(seq),
    Timestamp: at,
    ApiVersion: '2010-04-01',
  });
  const teeTwilio = async (params: Record<string, string>, path: string) => {
    const url = `/v1/tee/twilio${path}`;
    const req = twilioRequest(params, path);
    const headers = { ...req.headers, 'x-twilio-signature': computeTwilioSignature(SECRETS.TWILIO_AUTH_TOKEN, `https://ledger.example.com${url}`, Object.entries(params)) };
    return t.app.inject({ method: 'POST', url, headers, payload: req.payload });
  };

  it('shows each leg its instructions and dial targets → child legs, and flags and lists every discrepancy', async () => {
    answerFor = (r) =>
      r.url.startsWith('/tw/voice')
        ? { status: 200, headers: { 'content-type': 'text/xml' }, body: '<Response><Dial timeout="10" action="/tw/dial-done"><Number>+15551110001</Number><Number>+15551110002</Number></Dial></Response>' }
        : { status: 200, headers: { 'content-type': 'text/xml' }, body: '<Response><Hangup/></Response>' };
    const parent = { AccountSid: ACC, CallSid: P, CallStatus: 'ringing', Direction: 'inbound', From: '+15550009999', To: '+15550001111', ApiVersion: '2010-04-01' };
    expect((await teeTwilio(parent, '/voice')).statusCode).toBe(200);
    // The platform's side: the first number rings 40 s (asked: 10), the second is never dialled, a third nobody asked for appears.
    for (const p of [
      child('CA-intent-c1', '+15551110001', 'initiated', 'Tue, 01 Nov 2016 01:59:00 +0000', 0),
      child('CA-intent-c1', '+15551110001', 'ringing', 'Tue, 01 Nov 2016 01:59:00 +0000', 1),
      child('CA-intent-c1', '+15551110001', 'no-answer', 'Tue, 01 Nov 2016 01:59:40 +0000', 2),
      child('CA-intent-c3', '+15557770000', 'initiated', 'Tue, 01 Nov 2016 01:59:01 +0000', 0),
      child('CA-intent-c3', '+15557770000', 'busy', 'Tue, 01 Nov 2016 01:59:02 +0000', 1),
    ]) {
      const r = twilioRequest(p, '/status');
      const res = await t.app.inject({ method: 'POST', url: r.url, headers: r.headers, payload: r.payload });
      expect(res.statusCode).toBe(200);
    }
    const hook = await teeTwilio({ ...parent, CallStatus: 'in-progress', DialCallSid: 'CA-intent-c3', DialCallStatus: 'completed', DialCallDuration: '5' }, '/dial-done');
    expect(hook.body).toBe('<Response><Hangup/></Response>');
    await waitFor(async () => (await answerEvents(`appAnswers-twilio:${P}`)).length >= 2 || null, 'both answers');

    const tree = await waitFor(async () => {
      const res = await t.app.inject({ method: 'GET', url: `/v1/calls/${P}/tree`, headers: auth });
      if (res.statusCode !== 200) return null;
      const body = res.json();
      // Both answers are stored, but the projector may fold the second one a batch later (LEDGER_PROJECTOR_GATHER_MS).
      return body.children?.length === 2 && body.children.every((c: any) => c.final) && body.intent?.answers?.length === 2 ? body : null;
    }, 'the projected tree');
    expect(tree.intent.answers.map((a: any) => [a.path, a.instructions])).toEqual([
      ['voice', ['Dial']],
      ['dial-done', ['Hangup']],
    ]);
    expect(tree.intent.dials).toEqual([
      expect.objectContaining({
        verb: 'Dial',
        mode: 'simultaneous',
        ringTimeoutSec: 10,
        hooks: { action: '/tw/dial-done' },
        targets: [
          { type: 'phone', value: '+15551110001', childLegIds: ['CA-intent-c1'] },
          { type: 'phone', value: '+15551110002', childLegIds: [] },
        ],
      }),
    ]);
    const kinds = tree.intent.discrepancies.map((d: any) => [d.kind, d.childLegId ?? d.target?.value]).sort();
    expect(kinds).toEqual(
      [
        ['outcome-mismatch', 'CA-intent-c3'],
        ['ring-over-timeout', 'CA-intent-c1'],
        ['target-not-attempted', '+15551110002'],
        ['unexplained-child', 'CA-intent-c3'],
      ].sort(),
    );
    // Legs whose app was never teed carry no intent, and nothing is flagged on them.
    expect(tree.children.map((c: any) => c.intent)).toEqual([null, null]);

    const listed = await t.app.inject({ method: 'GET', url: `/v1/calls/CA-intent-c1/discrepancies?kind=ring-over-timeout`, headers: auth });
    expect(listed.statusCode).toBe(200);
    expect(listed.json().data).toMatchObject([{ kind: 'ring-over-timeout', legId: P, childLegId: 'CA-intent-c1' }]);

    // The audit trail shows each answer right after the delivery it answered.
    const events = (await t.app.inject({ method: 'GET', url: `/v1/calls/${P}/events`, headers: auth })).json();
    const answered = events.data.filter((e: any) => e.type === 'AppAnswered');
    expect(answered).toHaveLength(2);
    for (const a of answered) {
      const i = events.data.indexOf(a);
      expect(events.data[i - 1].receipt.id).toBe(a.answers);
    }
    expect(events.chain.valid).toBe(true);
  });
});
