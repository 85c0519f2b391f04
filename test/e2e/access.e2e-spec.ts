import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sql } from 'kysely';
import { ADMIN_KEY, API_KEY, IMPORT_KEY, READ_KEY, SECRETS, startTestApp, type TestApp } from '../support/test-app.js';
import { freeclimbRequest, jambonzRequest, nowSec, restcommRequest, twilioRequest, type SignedRequest } from '../support/signing.js';

/**
 * Access guarantees: every route but the webhooks, /health and the API docs needs a valid API key; secrets,
 * keys and signatures never reach the logs; an address that keeps failing signatures is rate-limited.
 */
const LIMIT = 5;
let t: TestApp;
const served: { method: string; url: string }[] = [];
/** Everything the app writes to stdout/stderr at trace level, from boot on (kept out of the test output). */
const captured: string[] = [];
const restoreStreams: (() => void)[] = [];
const capture = (stream: NodeJS.WriteStream) => {
  const original = stream.write;
  stream.write = ((chunk: unknown) => {
    captured.push(String(chunk));
    return true;
  }) as typeof stream.write;
  restoreStreams.push(() => void (stream.write = original));
};
beforeAll(async () => {
  capture(process.stdout);
  capture(process.stderr);
  t = await startTestApp(
    // Behind a trusted proxy, so that each request can come from the address its X-Forwarded-For names.
    // The API-key limiter is off here: these tests send hundreds of wrong keys on purpose (authenticity.e2e-spec.ts tests it).
    { ...SECRETS, LOG_LEVEL: 'trace', LEDGER_SIGNATURE_FAILURE_LIMIT: String(LIMIT), LEDGER_SIGNATURE_FAILURE_WINDOW_SEC: '600', LEDGER_TRUST_PROXY: 'true', LEDGER_API_KEY_FAILURE_LIMIT: '0' },
    { onRoute: (r) => void [r.method].flat().forEach((m) => served.push({ method: m, url: r.url })) },
  );
});
afterAll(async () => {
  await t.close();
  restoreStreams.forEach((restore) => restore());
});

// The console's pages and its sign-in routes are open by nature; what they lead to needs a key (test/e2e/console.e2e-spec.ts).
// The tee routes are authenticated like the webhooks they are (provider signatures), not by API key.
const OPEN = [/^\/v1\/webhooks\//, /^\/v1\/tee\//, /^\/health$/, /^\/docs([-/]|$)/, /^\/console(\/|$)/];
// Bench-only baseline route: registered only with LEDGER_BENCH_ROUTES=1, which the test app sets.
const BENCH = ['/internal/noop'];

const counts = async () =>
  (await sql<{ e: string; r: string }>`SELECT (SELECT count(*) FROM events)::text AS e, (SELECT count(*) FROM webhook_receipts)::text AS r`.execute(t.db.db)).rows[0];

let uniq = 0;
const fcBody = () =>
  JSON.stringify({ accountId: 'AC1', callId: `CA-access-${++uniq}`, callStatus: 'ringing', direction: 'inbound', from: '+1', to: '+2', requestType: 'inboundCall', parentCallId: null });
const from = (r: SignedRequest, address: string) => t.app.inject({ method: 'POST', url: r.url, headers: { ...r.headers, 'x-forwarded-for': address }, payload: r.payload });

describe('API keys', () => {
  const wrongKeys = [
    undefined,
    '',
    'Bearer',
    'Bearer ',
    `Bearer ${API_KEY.slice(0, -1)}`,
    `Bearer ${API_KEY}x`,
    `Bearer ${API_KEY.toUpperCase()}`,
    `Basic ${Buffer.from(`user:${API_KEY}`).toString('base64')}`,
    `Token ${API_KEY}`,
    `Bearer ${'a'.repeat(10_000)}`,
    'Bearer \u00e9\u00e9',
  ];

  it('are required by every route other than the webhooks, /health and the docs', async () => {
    const guarded = served.filter((r) => !['HEAD', 'OPTIONS'].includes(r.method) && !OPEN.some((re) => re.test(r.url)) && !BENCH.includes(r.url));
    expect(guarded.map((r) => r.url)).toEqual(expect.arrayContaining(['/v1/calls', '/v1/import', '/metrics', '/v1/audit/verify', '/v1/admin/webhook-rejections']));
    for (const route of guarded) {
      const url = route.url.replace(/:[A-Za-z0-9_]+/g, 'x').replace(/\*/g, 'x');
      for (const authorization of wrongKeys) {
        const res = await t.app.inject({
          method: route.method as 'GET',
          url,
          headers: { ...(authorization === undefined ? {} : { authorization }), 'content-type': 'application/json' },
          payload: route.method === 'GET' ? undefined : '{}',
        });
        expect(res.statusCode, `${route.method} ${url} with ${String(authorization).slice(0, 40)}`).toBe(401);
        expect(res.json().error.code).toBe('AUTH.API_KEY_INVALID');
      }
      const ok = await t.app.inject({ method: route.method as 'GET', url, headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/json' }, payload: route.method === 'GET' ? undefined : '{}' });
      expect(ok.statusCode, `${route.method} ${url} with the key`).not.toBe(401);
    }
  });

  it('need the scope of their route (read, import, admin), else 403 AUTH.FORBIDDEN_SCOPE', async () => {
    const guarded = served.filter((r) => !['HEAD', 'OPTIONS'].includes(r.method) && !OPEN.some((re) => re.test(r.url)) && !BENCH.includes(r.url));
    const scopeOf = (url: string) => (url === '/v1/import' ? 'import' : url.startsWith('/v1/admin/') ? 'admin' : 'read');
    expect(new Set(guarded.map((r) => scopeOf(r.url)))).toEqual(new Set(['read', 'import', 'admin']));
    const keys = { read: READ_KEY, import: IMPORT_KEY, admin: ADMIN_KEY } as const;
    for (const route of guarded) {
      const url = route.url.replace(/:[A-Za-z0-9_]+/g, 'x').replace(/\*/g, 'x');
      for (const [scope, key] of Object.entries(keys)) {
        const res = await t.app.inject({
          method: route.method as 'GET',
          url,
          headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
          payload: route.method === 'GET' ? undefined : '{"name":"no-such-projection"}',
        });
        const where = `${route.method} ${url} with the ${scope} key`;
        if (scope === scopeOf(route.url)) expect(res.statusCode, where).not.toBe(403);
        else expect(res.json().error?.code, where).toBe('AUTH.FORBIDDEN_SCOPE');
      }
    }
  });

  it('are not needed by /health and the docs', async () => {
    for (const url of ['/health', '/docs', '/docs-json']) expect((await t.app.inject({ method: 'GET', url })).statusCode, url).toBe(200);
  });
});

describe('logs', () => {
  it('never carry a secret, an API key or a full signature, whatever the requests', async () => {
    const signatures: string[] = [];
    {
      for (let i = 0; i < 3; i++) {
        const good = freeclimbRequest(fcBody());
        signatures.push(good.headers['freeclimb-signature']!.split('v1=')[1]!);
        await from(good, `198.51.100.${i}`);
        const bad = freeclimbRequest(fcBody(), '', nowSec(), `${SECRETS.FREECLIMB_SIGNING_SECRET}-guess`);
        signatures.push(bad.headers['freeclimb-signature']!.split('v1=')[1]!);
        await from(bad, `198.51.100.${i}`);
        const jz = jambonzRequest('{"call_sid":"x"}', '/status', nowSec(), 'whsec_wrong');
        signatures.push(jz.headers['jambonz-signature']!.split('v1=')[1]!);
        await from(jz, `198.51.100.${i}`);
        const tw = twilioRequest({ CallSid: `CA${i}`, CallStatus: 'ringing' }, '/status', 'wrong-token');
        signatures.push(tw.headers['x-twilio-signature']!);
        await from(tw, `198.51.100.${i}`);
        await from(restcommRequest('CallSid=CA1&CallStatus=ringing', '/status', 'wrong-restcomm-token'), `198.51.100.${i}`);
        await from(restcommRequest('CallSid=CA1&CallStatus=ringing', '/status'), `198.51.100.${i}`);
        for (const auth of [`Bearer ${API_KEY}`, `Bearer ${API_KEY}-wrong`, 'Bearer guessed-key-123456']) {
          await t.app.inject({ method: 'GET', url: '/v1/calls?limit=oops', headers: { authorization: auth } });
          await t.app.inject({ method: 'POST', url: '/v1/import', headers: { authorization: auth, 'content-type': 'text/plain' }, payload: 'x' });
        }
      }
    }
    const text = captured.join('');
    // The capture works: the boot log of a trace-level app is in it.
    expect(text).toContain('Nest application successfully started');
    const forbidden = [...Object.values(SECRETS), API_KEY, `${API_KEY}-wrong`, 'guessed-key-123456', 'wrong-token', 'wrong-restcomm-token', 'whsec_wrong', ...signatures];
    for (const secret of forbidden) expect(text.includes(secret), `log holds ${secret.slice(0, 12)}…`).toBe(false);
  });
});

describe('repeated signature failures from one address', () => {
  it(`are answered 429 with Retry-After after ${LIMIT}, authentic deliveries from that address included, while other addresses go on`, async () => {
    const attacker = '203.0.113.7';
    const before = await counts();
    for (let i = 0; i < LIMIT; i++) {
      const res = await from(freeclimbRequest(fcBody(), '', nowSec(), 'guess'), attacker);
      expect(res.statusCode).toBe(401);
    }
    for (let i = 0; i < 2; i++) {
      const limited = await from(freeclimbRequest(fcBody(), '', nowSec(), 'guess'), attacker);
      expect(limited.statusCode).toBe(429);
      expect(Number(limited.headers['retry-after'])).toBeGreaterThanOrEqual(1);
      expect(Number(limited.headers['retry-after'])).toBeLessThanOrEqual(600);
      expect(limited.json()).toEqual({ error: { code: 'REQUEST.RATE_LIMITED', message: expect.stringContaining('too many refused signatures') } });
    }
    expect(await counts()).toEqual(before);
    // Even a right signature: a guesser over its allowance must not learn that a guess hit (README, "Guessing").
    expect((await from(freeclimbRequest(fcBody()), attacker)).statusCode).toBe(429);
    expect((await from(freeclimbRequest(fcBody(), '', nowSec(), 'guess'), '203.0.113.8')).statusCode).toBe(401);

    const metrics = await t.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${API_KEY}` } });
    expect(metrics.body).toMatch(/ledger_webhook_rate_limited_total\{provider="freeclimb"\} 3/);
    // Only the first refusals are logged: the limited ones do not push other addresses' refusals out of the log.
    const log = (await t.app.inject({ method: 'GET', url: '/v1/admin/webhook-rejections', headers: { authorization: `Bearer ${API_KEY}` } })).json();
    expect(log.recent.filter((r: { remoteAddr: string }) => r.remoteAddr === attacker)).toHaveLength(LIMIT);
  });
});

describe('remote address without a trusted proxy (the default)', () => {
  it('stores the peer address and ignores a client-supplied X-Forwarded-For', async () => {
    const own = await startTestApp(SECRETS);
    try {
      const r = restcommRequest('CallSid=CA-trust-proxy&CallStatus=ringing');
      const res = await own.app.inject({ method: 'POST', url: r.url, headers: { ...r.headers, 'x-forwarded-for': '203.0.113.9' }, payload: r.payload, remoteAddress: '198.51.100.7' });
      expect(res.statusCode).toBe(200);
      const row = await own.db.db.selectFrom('webhook_receipts').select('remote_addr').where('id', '=', res.json().receiptId).executeTakeFirstOrThrow();
      expect(row.remote_addr).toBe('198.51.100.7');
    } finally {
      await own.close();
    }
  });
});
