import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY, IMPORT_KEY, READ_KEY, SECRETS, startTestApp, type TestApp } from '../support/test-app.js';
import { freeclimbRequest, jambonzRequest, nowSec, type SignedRequest } from '../support/signing.js';

/**
 * Authenticity and access: unsigned providers are refused unless opted in, every leg carries the weakest
 * verification of the events that shaped it (a filter on queries, analytics and export), API keys have scopes,
 * imports and admin actions are recorded by key name, and an address over its failure limit is refused outright.
 */
let t: TestApp;
beforeAll(async () => {
  // FreeClimb signed; jambonz has no secret and is accepted unsigned on purpose; twilio has none and is refused.
  t = await startTestApp({
    FREECLIMB_SIGNING_SECRET: SECRETS.FREECLIMB_SIGNING_SECRET,
    RESTCOMM_WEBHOOK_TOKEN: SECRETS.RESTCOMM_WEBHOOK_TOKEN,
    LEDGER_ACCEPT_UNSIGNED: 'jambonz',
  });
});
afterAll(async () => t.close());

const as = (key: string) => ({ authorization: `Bearer ${key}` });
const get = (url: string, key = API_KEY) => t.app.inject({ method: 'GET', url, headers: as(key) });
const post = (r: SignedRequest) => t.app.inject({ method: 'POST', url: r.url, headers: r.headers, payload: r.payload });
const importLines = (lines: unknown[], key = IMPORT_KEY) =>
  t.app.inject({
    method: 'POST',
    url: '/v1/import',
    headers: { 'content-type': 'application/x-ndjson', ...as(key) },
    payload: lines.map((l) => JSON.stringify(l)).join('\n') + '\n',
  });
const counts = async () => {
  const r = await t.db.db.selectFrom('webhook_receipts').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
  return r.n;
};

const fcBody = (callId: string, callStatus = 'ringing', requestType = 'inboundCall', accountId = 'AC-auth') =>
  JSON.stringify({ accountId, callId, callStatus, direction: 'inbound', from: '+13125550100', to: '+13125550199', requestType, parentCallId: null });
const jzBody = (callSid: string) =>
  JSON.stringify({ call_sid: callSid, account_sid: 'AC-jz', direction: 'inbound', from: '+1', to: '+2', call_status: 'ringing', sip_status: 180 });

describe('unsigned deliveries', () => {
  it('are refused (403 WEBHOOK.PROVIDER_NOT_CONFIGURED) for a provider with no secret, and nothing is stored', async () => {
    const before = await counts();
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/webhooks/twilio/status',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: 'CallSid=CAforged&CallStatus=completed&Direction=inbound',
    });
    expect(res.statusCode).toBe(403);
    expect(res.json()).toEqual({ error: { code: 'WEBHOOK.PROVIDER_NOT_CONFIGURED', message: expect.stringContaining('LEDGER_ACCEPT_UNSIGNED') } });
    expect(await counts()).toBe(before);
  });

  it('are refused by default: an app with no secret and no opt-in takes no delivery', async () => {
    const bare = await startTestApp({});
    try {
      const res = await bare.app.inject({ method: 'POST', url: '/v1/webhooks/jambonz/status', headers: { 'content-type': 'application/json' }, payload: jzBody('CA-bare') });
      expect(res.statusCode).toBe(403);
      expect(res.json().error.code).toBe('WEBHOOK.PROVIDER_NOT_CONFIGURED');
    } finally {
      await bare.close();
    }
  });

  it('are taken from an opted-in provider, and its legs say unverified', async () => {
    const res = await post(jambonzRequest(jzBody('CA-jz-unsigned'), '/status', nowSec(), 'not-the-secret-at-all'));
    expect(res.statusCode).toBe(200);
    const leg = await get(`/v1/calls/CA-jz-unsigned?minPosition=${res.json().position}`);
    expect(leg.statusCode).toBe(200);
    expect(leg.json().verification).toBe('unverified');
  });
});

describe('verification state of legs', () => {
  let position = '0';
  beforeAll(async () => {
    for (const callId of ['CA-signed-1', 'CA-signed-2', 'CA-touched']) {
      const res = await post(freeclimbRequest(fcBody(callId)));
      expect(res.statusCode).toBe(200);
      position = res.json().position;
    }
    const forged = await post(jambonzRequest(jzBody('CA-jz-forged')));
    position = forged.json().position;
    // A verified leg, then an imported event that ends it: the leg is no longer verified.
    const imported = await importLines([
      { provider: 'freeclimb', receivedAt: new Date().toISOString(), contentType: 'application/json', body: fcBody('CA-touched', 'completed', 'callStatus') },
    ]);
    expect(imported.json()).toMatchObject({ imported: 1 });
    const head = await t.db.db.selectFrom('events').select((eb) => eb.fn.max('global_position').as('p')).executeTakeFirstOrThrow();
    position = String(head.p);
  });

  it('a leg every event of which is signed is verified; one imported event makes it imported', async () => {
    expect((await get(`/v1/calls/CA-signed-1?minPosition=${position}`)).json().verification).toBe('verified');
    const touched = (await get(`/v1/calls/CA-touched?minPosition=${position}`)).json();
    expect(touched.status).not.toBe('ringing');
    expect(touched.verification).toBe('imported');
  });

  it('filters GET /v1/calls', async () => {
    const ids = async (v: string) =>
      (await get(`/v1/calls?verification=${v}&accountId=AC-auth&minPosition=${position}`)).json().data.map((l: { callId: string }) => l.callId).sort();
    expect(await ids('verified')).toEqual(['CA-signed-1', 'CA-signed-2']);
    expect(await ids('imported')).toEqual(['CA-touched']);
    const unverified = (await get(`/v1/calls?verification=unverified&minPosition=${position}`)).json().data.map((l: { callId: string }) => l.callId);
    expect(unverified).toContain('CA-jz-forged');
    expect(unverified).not.toContain('CA-signed-1');
    const bad = await get('/v1/calls?verification=trusted');
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.code).toBe('QUERY.INVALID_PARAMETER');
  });

  it('filters the analytics, whole hours included', async () => {
    const since = new Date(Date.now() - 3 * 3600_000).toISOString();
    const until = new Date(Date.now() + 3600_000).toISOString();
    const legs = async (v: string) =>
      (await get(`/v1/analytics/summary?verification=${v}&accountId=AC-auth&since=${since}&until=${until}&minPosition=${position}`)).json().totals.legs;
    expect(await legs('verified')).toBe(2);
    expect(await legs('imported')).toBe(1);
    const series = (await get(`/v1/analytics/timeseries?verification=verified&accountId=AC-auth&since=${since}&until=${until}&interval=hour&minPosition=${position}`)).json();
    expect(series.buckets.reduce((n: number, b: { legs: number }) => n + b.legs, 0)).toBe(2);
  });

  it('is a CSV column and an NDJSON field of the export, and filters it', async () => {
    const csv = (await get(`/v1/export/calls?format=csv&accountId=AC-auth&minPosition=${position}`)).body.trim().split('\r\n');
    const header = csv[0]!.split(',');
    const col = header.indexOf('verification');
    expect(col).toBeGreaterThanOrEqual(0);
    const byId = Object.fromEntries(csv.slice(1).map((line) => line.split(',')).map((f) => [f[header.indexOf('callId')], f[col]]));
    expect(byId).toEqual({ 'CA-signed-1': 'verified', 'CA-signed-2': 'verified', 'CA-touched': 'imported' });
    const nd = (await get(`/v1/export/calls?format=ndjson&verification=imported&minPosition=${position}`)).body.trim().split('\n').map((l) => JSON.parse(l));
    expect(nd.map((l) => [l.callId, l.verification])).toEqual([['CA-touched', 'imported']]);
  });
});

describe('API key scopes', () => {
  it('read keys query, and are refused import and admin (403 AUTH.FORBIDDEN_SCOPE)', async () => {
    expect((await get('/v1/calls', READ_KEY)).statusCode).toBe(200);
    expect((await get('/v1/analytics/summary', READ_KEY)).statusCode).toBe(200);
    expect((await get('/metrics', READ_KEY)).statusCode).toBe(200);
    const before = await counts();
    const imp = await importLines([{ provider: 'freeclimb', receivedAt: '2026-01-05T14:02:10Z', body: fcBody('CA-by-reader', 'ringing', 'inboundCall', 'AC-scopes') }], READ_KEY);
    expect(imp.statusCode).toBe(403);
    expect(imp.json()).toEqual({ error: { code: 'AUTH.FORBIDDEN_SCOPE', message: expect.stringContaining('"import"') } });
    expect(await counts()).toBe(before);
    for (const url of ['/v1/admin/projections', '/v1/admin/webhook-rejections']) {
      const res = await get(url, READ_KEY);
      expect(res.statusCode, url).toBe(403);
      expect(res.json().error.code).toBe('AUTH.FORBIDDEN_SCOPE');
    }
    const rebuild = await t.app.inject({ method: 'POST', url: '/v1/admin/projections/rebuild', headers: { ...as(READ_KEY), 'content-type': 'application/json' }, payload: '{}' });
    expect(rebuild.statusCode).toBe(403);
  });

  it('import keys import, and are refused queries and admin', async () => {
    expect((await get('/v1/calls', IMPORT_KEY)).statusCode).toBe(403);
    expect((await get('/v1/admin/projections', IMPORT_KEY)).statusCode).toBe(403);
    const ok = await importLines([{ provider: 'freeclimb', receivedAt: '2026-01-05T14:02:10Z', body: fcBody('CA-by-loader', 'ringing', 'inboundCall', 'AC-scopes') }], IMPORT_KEY);
    expect(ok.statusCode).toBe(200);
  });

  it('admin keys administer', async () => {
    expect((await get('/v1/admin/projections')).statusCode).toBe(200);
    expect((await get('/v1/admin/webhook-rejections')).statusCode).toBe(200);
  });

  it('each import and rebuild is recorded with the key name, its counts and receipt ids, never the key', async () => {
    const res = await importLines([
      { provider: 'freeclimb', receivedAt: '2026-01-05T14:02:10Z', body: fcBody('CA-audit-1', 'ringing', 'inboundCall', 'AC-scopes') },
      { provider: 'freeclimb', receivedAt: '2026-01-05T14:02:11Z', body: fcBody('CA-audit-2', 'ringing', 'inboundCall', 'AC-scopes') },
      { provider: 'freeclimb', receivedAt: '2026-01-05T14:02:11Z', body: fcBody('CA-audit-1', 'ringing', 'inboundCall', 'AC-scopes') },
      'not a line',
    ]);
    expect(res.json()).toMatchObject({ imported: 2, duplicates: 1 });
    const receipts = await t.db.db
      .selectFrom('webhook_receipts').select('id').where('source', '=', 'import').orderBy('id', 'desc').limit(2).execute();
    const rebuild = await t.app.inject({ method: 'POST', url: '/v1/admin/projections/rebuild', headers: { ...as(API_KEY), 'content-type': 'application/json' }, payload: '{"name":"call_legs"}' });
    expect(rebuild.statusCode).toBe(202);

    const actions = await t.db.db.selectFrom('audit_actions').selectAll().orderBy('id', 'desc').limit(2).execute();
    expect(actions[1]).toMatchObject({
      key_name: 'loader',
      action: 'import',
      details: { outcome: 'done', imported: 2, duplicates: 1, rejected: 1, firstReceiptId: receipts[1]!.id, lastReceiptId: receipts[0]!.id },
    });
    expect(actions[0]).toMatchObject({ key_name: 'ops', action: 'projections.rebuild', details: { requested: 'call_legs', rebuilding: ['call_legs'] } });
    const served = (await get('/v1/admin/actions?limit=2')).json().data;
    expect(served.map((a: { keyName: string; action: string }) => [a.keyName, a.action])).toEqual([['ops', 'projections.rebuild'], ['loader', 'import']]);
    expect((await get('/v1/admin/actions', READ_KEY)).statusCode).toBe(403);
    const all = JSON.stringify(await t.db.db.selectFrom('audit_actions').selectAll().execute());
    for (const key of [API_KEY, IMPORT_KEY, READ_KEY]) expect(all).not.toContain(key);
  });
});

describe('guessing', () => {
  const LIMIT = 3;
  let g: TestApp;
  beforeAll(async () => {
    // No trusted proxy (the default): the address is the TCP peer, which a client cannot choose.
    g = await startTestApp({ ...SECRETS, LEDGER_SIGNATURE_FAILURE_LIMIT: String(LIMIT), LEDGER_API_KEY_FAILURE_LIMIT: String(LIMIT) });
  });
  afterAll(async () => g.close());
  const fromPeer = (r: SignedRequest, remoteAddress: string) =>
    g.app.inject({ method: 'POST', url: r.url, headers: r.headers, payload: r.payload, remoteAddress });
  const keyFrom = (key: string, remoteAddress: string) =>
    // /metrics: a read route that does not wait for the read models of this fresh app.
    g.app.inject({ method: 'GET', url: '/metrics', headers: as(key), remoteAddress });

  it('a right signature from an address over its limit is refused too (429), other addresses unaffected', async () => {
    const guesser = '203.0.113.50';
    for (let i = 0; i < LIMIT; i++) expect((await fromPeer(freeclimbRequest(fcBody(`CA-g${i}`), '', nowSec(), 'a-wrong-guess-0123456789'), guesser)).statusCode).toBe(401);
    const right = await fromPeer(freeclimbRequest(fcBody('CA-right-guess')), guesser);
    expect(right.statusCode).toBe(429);
    expect(Number(right.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(right.json().error.code).toBe('REQUEST.RATE_LIMITED');
    const stored = await g.db.db.selectFrom('webhook_receipts').select('id').where('remote_addr', '=', guesser).execute();
    expect(stored).toHaveLength(0);
    expect((await fromPeer(freeclimbRequest(fcBody('CA-other-peer')), '203.0.113.51')).statusCode).toBe(200);
  });

  it('API keys: past the limit of wrong keys, the right key is refused too (429 with Retry-After); other addresses go on', async () => {
    const guesser = '203.0.113.60';
    for (let i = 0; i < LIMIT; i++) {
      const res = await keyFrom(`guess-${i}-0123456789abcdef`, guesser);
      expect(res.statusCode).toBe(401);
    }
    const right = await keyFrom(API_KEY, guesser);
    expect(right.statusCode).toBe(429);
    expect(Number(right.headers['retry-after'])).toBeGreaterThanOrEqual(1);
    expect(right.json()).toEqual({ error: { code: 'REQUEST.RATE_LIMITED', message: expect.stringContaining('API keys') } });
    expect((await keyFrom(API_KEY, '203.0.113.61')).statusCode).toBe(200);
    // A scope refusal is not a guess: the key was right.
    for (let i = 0; i < LIMIT + 2; i++) expect((await keyFrom(IMPORT_KEY, '203.0.113.62')).statusCode).toBe(403);
    expect((await keyFrom(API_KEY, '203.0.113.62')).statusCode).toBe(200);
  });
});
