import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY, readyProjector, startTestApp, type TestApp } from '../support/test-app.js';

/**
 * Console sessions through the whole app: sign-in sets an HttpOnly, SameSite=Strict cookie that the API routes
 * accept in place of the Bearer key; state-changing requests made with it need the session's CSRF token; sign-out
 * ends it; the key is never logged.
 */
let t: TestApp;
const captured: string[] = [];
const restore: (() => void)[] = [];
for (const stream of [process.stdout, process.stderr]) {
  const original = stream.write;
  stream.write = ((chunk: unknown) => (captured.push(String(chunk)), true)) as typeof stream.write;
  restore.push(() => void (stream.write = original));
}
beforeAll(async () => {
  t = await startTestApp({ LOG_LEVEL: 'trace' });
  // The read models exist once the projector has initialised; before that GET /v1/calls is a 503 (a loaded machine
  // showed it).
  await readyProjector(t);
});
afterAll(async () => {
  await t.close();
  restore.forEach((r) => r());
});

const signIn = async (apiKey = API_KEY, headers: Record<string, string> = {}) =>
  t.app.inject({ method: 'POST', url: '/console/api/session', headers: { 'content-type': 'application/json', ...headers }, payload: JSON.stringify({ apiKey }) });

const open = async () => {
  const res = await signIn();
  expect(res.statusCode).toBe(200);
  const cookie = String(res.headers['set-cookie']).split(';')[0]!;
  return { cookie, csrf: (res.json() as { csrfToken: string }).csrfToken, setCookie: String(res.headers['set-cookie']) };
};

describe('console sessions', () => {
  it('sign-in sets an HttpOnly, SameSite=Strict cookie holding a random id, not the key', async () => {
    const { setCookie, cookie } = await open();
    expect(setCookie).toMatch(/^ledger_console=[A-Za-z0-9_-]{43}; /);
    expect(setCookie).toContain('HttpOnly');
    expect(setCookie).toContain('SameSite=Strict');
    expect(setCookie).toContain('Path=/');
    // The browser may keep it for the session's absolute lifetime (12 h); the idle limit is enforced by the service.
    expect(setCookie).toContain('Max-Age=43200');
    expect(setCookie).not.toContain('Secure');
    expect(cookie).not.toContain(API_KEY);
  });

  it('marks the cookie Secure when the request came over https', async () => {
    const https = await startTestApp({ LEDGER_TRUST_PROXY: 'true' });
    try {
      const res = await https.app.inject({ method: 'POST', url: '/console/api/session', headers: { 'content-type': 'application/json', 'x-forwarded-proto': 'https' }, payload: JSON.stringify({ apiKey: API_KEY }) });
      expect(String(res.headers['set-cookie'])).toContain('Secure');
    } finally {
      await https.close();
    }
  });

  it('refuses a wrong key, a key in the wrong shape, a form post and a cross-site sign-in', async () => {
    expect((await signIn('wrong')).statusCode).toBe(401);
    expect((await signIn(`${API_KEY}x`)).statusCode).toBe(401);
    const form = await t.app.inject({ method: 'POST', url: '/console/api/session', headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: `apiKey=${API_KEY}` });
    // The body parser already refuses a body that is not JSON (400); a JSON body with a form type gets 415.
    expect(form.statusCode).toBe(400);
    expect(form.headers['set-cookie']).toBeUndefined();
    const mislabelled = await t.app.inject({ method: 'POST', url: '/console/api/session', headers: { 'content-type': 'text/plain' }, payload: JSON.stringify({ apiKey: API_KEY }) });
    expect(mislabelled.statusCode).toBe(415);
    const cross = await signIn(API_KEY, { 'sec-fetch-site': 'cross-site' });
    expect(cross.statusCode).toBe(403);
    expect(cross.headers['set-cookie']).toBeUndefined();
    expect(cross.json()).toMatchObject({ error: { code: 'AUTH.CSRF' } });
  });

  it('opens the API routes with the cookie, and only the cookie of a live session', async () => {
    const { cookie } = await open();
    expect((await t.app.inject({ method: 'GET', url: '/v1/calls', headers: { cookie } })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'GET', url: '/v1/admin/projections', headers: { cookie } })).statusCode).toBe(200);
    expect((await t.app.inject({ method: 'GET', url: '/v1/calls', headers: { cookie: 'ledger_console=forged' } })).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'GET', url: '/v1/calls' })).statusCode).toBe(401);
    // An explicit Authorization header is judged on its own: a wrong key is not rescued by the cookie.
    expect((await t.app.inject({ method: 'GET', url: '/v1/calls', headers: { cookie, authorization: 'Bearer wrong' } })).statusCode).toBe(401);
  });

  it('needs the CSRF token of the session for a state-changing request made with the cookie', async () => {
    const { cookie, csrf } = await open();
    const rebuild = (headers: Record<string, string>) =>
      t.app.inject({ method: 'POST', url: '/v1/admin/projections/rebuild', headers: { cookie, 'content-type': 'application/json', ...headers }, payload: '{"name":"no-such-projection"}' });
    const none = await rebuild({});
    expect(none.statusCode).toBe(403);
    expect(none.json()).toMatchObject({ error: { code: 'AUTH.CSRF' } });
    expect((await rebuild({ 'x-ledger-csrf': 'wrong' })).statusCode).toBe(403);
    expect((await rebuild({ 'x-ledger-csrf': csrf, 'sec-fetch-site': 'cross-site' })).statusCode).toBe(403);
    // With the token the request reaches the route (which then refuses the unknown projection name).
    expect((await rebuild({ 'x-ledger-csrf': csrf, 'sec-fetch-site': 'same-origin' })).statusCode).toBe(404);
  });

  it('leaves the webhooks to their own rules: a session cookie without a CSRF header does not block one', async () => {
    const { cookie } = await open();
    // No FreeClimb secret in this app: the delivery gets the webhook's own answer (refused as from an unconfigured
    // provider), never the console's CSRF refusal, cookie or not.
    const body = JSON.stringify({ requestType: 'inboundCall', callId: 'CA-console-cookie', accountId: 'AC1', parentCallId: null, from: '+1', to: '+2', callStatus: 'ringing', direction: 'inbound' });
    const res = await t.app.inject({ method: 'POST', url: '/v1/webhooks/freeclimb/voice', headers: { cookie, 'content-type': 'application/json' }, payload: body });
    expect(res.json()).toMatchObject({ error: { code: 'WEBHOOK.PROVIDER_NOT_CONFIGURED' } });
  });

  it('tells the page its CSRF token for a live session, and 401 without one', async () => {
    const { cookie, csrf } = await open();
    const res = await t.app.inject({ method: 'GET', url: '/console/api/session', headers: { cookie } });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ csrfToken: csrf });
    expect((await t.app.inject({ method: 'GET', url: '/console/api/session' })).statusCode).toBe(401);
  });

  it('signs out: the session ends and the cookie is cleared', async () => {
    const { cookie, csrf } = await open();
    expect((await t.app.inject({ method: 'DELETE', url: '/console/api/session', headers: { cookie } })).statusCode).toBe(403);
    const out = await t.app.inject({ method: 'DELETE', url: '/console/api/session', headers: { cookie, 'x-ledger-csrf': csrf } });
    expect(out.statusCode).toBe(200);
    expect(String(out.headers['set-cookie'])).toMatch(/^ledger_console=; Max-Age=0/);
    expect((await t.app.inject({ method: 'GET', url: '/v1/calls', headers: { cookie } })).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'GET', url: '/console/api/session', headers: { cookie } })).statusCode).toBe(401);
  });

  it('never writes the key to the logs', () => {
    expect(captured.length).toBeGreaterThan(0);
    expect(captured.join('')).not.toContain(API_KEY);
  });
});

describe('console pages', () => {
  it('answers every /console path with the page (or says it is not built), without a key', async () => {
    for (const url of ['/console', '/console/calls', '/console/calls/CA1?provider=twilio']) {
      const res = await t.app.inject({ method: 'GET', url });
      if (res.statusCode === 503) expect(res.json()).toMatchObject({ error: { code: 'CONSOLE.NOT_BUILT' } });
      else {
        expect(res.statusCode).toBe(200);
        expect(res.headers['content-type']).toContain('text/html');
        expect(res.headers['content-security-policy']).toContain("script-src 'self'");
      }
    }
  });
});
