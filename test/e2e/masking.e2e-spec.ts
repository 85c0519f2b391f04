import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY, API_KEYS_ENV, readyProjector, SECRETS, startTestApp, type TestApp } from '../support/test-app.js';
import { freeclimbRequest, type SignedRequest } from '../support/signing.js';

/**
 * Masking in reads (issue 16): a `read-masked` key reads every read route with each number reduced to its last four
 * digits: the calls list, a leg, its tree, its events (raw bodies included), the exports, the console's session.
 * Every GET route of scope read is called, so that a route added later without masking fails here.
 */
const MASKED_KEY = 'test-masked-key-0123456789';
const ACC = 'ACe511f7e60a7aaec1435ac251c24f6bd698d8dd14';
const CALLER = '+13125550147';
const CALLEE = '+13125550100';
const CHILD_TO = '+14155550123';
const FULL = [CALLER, CALLEE, CHILD_TO].map((n) => n.slice(1));

let t: TestApp;
let head = '0';
const served: { method: string; url: string }[] = [];
const masked = { authorization: `Bearer ${MASKED_KEY}` };
const post = async (r: SignedRequest) => {
  const res = await t.app.inject({ method: 'POST', url: r.url, headers: r.headers, payload: r.payload });
  expect(res.statusCode, res.body).toBe(200);
  head = (res.json() as { position: string }).position;
};
const fc = (callId: string, status: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ accountId: ACC, callId, callStatus: status, direction: 'inbound', from: CALLER, to: CALLEE, parentCallId: null, conferenceId: null, queueId: null, requestType: 'callStatus', ...extra });

beforeAll(async () => {
  t = await startTestApp(
    { ...SECRETS, LEDGER_API_KEYS: `${API_KEYS_ENV},support:read-masked:${MASKED_KEY}` },
    { onRoute: (r) => void [r.method].flat().forEach((m) => served.push({ method: m, url: r.url })) },
  );
  await readyProjector(t);
  await post(freeclimbRequest(fc('CA-mask-parent', 'ringing', { requestType: 'inboundCall' }), '/voice'));
  await post(freeclimbRequest(fc('CA-mask-child', 'ringing', { requestType: 'outDialStart', parentCallId: 'CA-mask-parent', direction: 'outbound-dial', to: CHILD_TO }), '/dial'));
  await post(freeclimbRequest(fc('CA-mask-parent', 'completed', { callDuration: 12 }), '/status'));
});
afterAll(async () => t.close());

/** Every read route with real parameters (minPosition waits for the projector). */
const urls = () => [
  `/v1/calls?minPosition=${head}`,
  `/v1/calls?from=${encodeURIComponent(CALLER)}&minPosition=${head}`,
  `/v1/calls/CA-mask-parent?minPosition=${head}`,
  `/v1/calls/CA-mask-parent/tree?minPosition=${head}`,
  `/v1/calls/CA-mask-parent/events?minPosition=${head}`,
  `/v1/calls/CA-mask-parent/events?tree=true&minPosition=${head}`,
  `/v1/calls/CA-mask-parent/discrepancies?minPosition=${head}`,
  `/v1/calls/CA-mask-child?minPosition=${head}`,
  `/v1/export/calls?format=csv&minPosition=${head}`,
  `/v1/export/calls?format=ndjson&minPosition=${head}`,
  '/v1/recordings',
  '/v1/analytics/summary',
  '/v1/analytics/timeseries?interval=day',
  '/v1/audit/verify',
  '/v1/audit/public-key',
  '/metrics',
];

describe('read-masked keys', () => {
  it('are served every read route with no full number, the last four digits kept', async () => {
    // A full-scope key sees the numbers (the baseline the masked answers are compared with).
    const full = await t.app.inject({ method: 'GET', url: `/v1/calls/CA-mask-parent/events?tree=true&minPosition=${head}`, headers: { authorization: `Bearer ${API_KEY}` } });
    for (const n of FULL) expect(full.body).toContain(n);

    const seen: string[] = [];
    for (const url of urls()) {
      const res = await t.app.inject({ method: 'GET', url, headers: masked });
      expect(res.statusCode, `${url}: ${res.body.slice(0, 300)}`).toBe(200);
      for (const n of FULL) expect(res.body, url).not.toContain(n);
      seen.push(res.body);
    }
    const all = seen.join('\n');
    expect(all).toContain('+*******0147');
    expect(all).toContain('+*******0100');
    expect(all).toContain('+*******0123');
    // The raw bodies are served, masked: the events route still says what the provider sent.
    const events = (await t.app.inject({ method: 'GET', url: `/v1/calls/CA-mask-parent/events?minPosition=${head}`, headers: masked })).json();
    expect(events.data[0].receipt.body).toContain('"from":"+*******0147"');
    expect(events.data[0].data).toMatchObject({ from: '+*******0147', to: '+*******0100' });

    // Every GET route of scope read was called above (a new read route must be added, and masked).
    const open = [/^\/v1\/webhooks\//, /^\/v1\/tee\//, /^\/health$/, /^\/docs([-/]|$)/, /^\/console(\/|$)/, /^\/internal\//, /^\/v1\/admin\//, /^\/v1\/import$/];
    const called = new Set(urls().map((u) => u.split('?')[0]!.replace(/CA-mask-(parent|child)/, ':callId')));
    const reads = served.filter((r) => r.method === 'GET' && !open.some((re) => re.test(r.url)) && r.url !== '/v1/audit/export');
    for (const r of reads) expect(called, r.url).toContain(r.url);
  });

  it('are refused the audit export (masked values would not verify) and every route of another scope', async () => {
    for (const [method, url] of [['GET', '/v1/audit/export'], ['GET', '/v1/admin/actions'], ['POST', '/v1/admin/erasures'], ['POST', '/v1/import']] as const) {
      const res = await t.app.inject({ method, url, headers: { ...masked, 'content-type': 'application/json' }, payload: method === 'POST' ? '{}' : undefined });
      expect(res.statusCode, url).toBe(403);
    }
  });

  it('mask what the console reads with a session opened by such a key', async () => {
    const signIn = await t.app.inject({ method: 'POST', url: '/console/api/session', headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ apiKey: MASKED_KEY }) });
    expect(signIn.statusCode).toBe(200);
    const cookie = String(signIn.headers['set-cookie']).split(';')[0]!;
    for (const url of [`/v1/calls?minPosition=${head}`, `/v1/calls/CA-mask-parent/events?tree=true&minPosition=${head}`]) {
      const res = await t.app.inject({ method: 'GET', url, headers: { cookie } });
      expect(res.statusCode, res.body).toBe(200);
      for (const n of FULL) expect(res.body).not.toContain(n);
      expect(res.body).toContain('0147');
    }
  });
});
