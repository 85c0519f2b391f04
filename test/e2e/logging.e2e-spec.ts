import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY, SECRETS, startTestApp, type TestApp } from '../support/test-app.js';
import { freeclimbRequest, restcommRequest, twilioRequest } from '../support/signing.js';

/** The logs are JSON lines with a request id per request, one access line each, and never a credential. */
const lines: string[] = [];
let t: TestApp;
beforeAll(async () => {
  t = await startTestApp({ ...SECRETS, LOG_LEVEL: 'trace' }, { logDestination: { write: (line: string) => void lines.push(line) } });
});
afterAll(() => t.close());

type Entry = Record<string, unknown>;
const entries = (): Entry[] => lines.join('').split('\n').filter(Boolean).map((l) => JSON.parse(l) as Entry);
const accessLines = () => entries().filter((e) => e.msg === 'request completed');

describe('logs', () => {
  it('are JSON lines, and the boot messages of Nest go through the same logger', () => {
    expect(lines.length).toBeGreaterThan(0);
    const all = entries();
    expect(all.every((e) => typeof e.level === 'string' && typeof e.time === 'string')).toBe(true);
    expect(all.some((e) => e.msg === 'Nest application successfully started')).toBe(true);
  });

  it('have one access line per request with method, route, status, duration, remote address and the request id it echoes', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/v1/admin/webhook-rejections', headers: { authorization: `Bearer ${API_KEY}` } });
    expect(res.statusCode).toBe(200);
    const id = res.headers['x-request-id'] as string;
    expect(id).toMatch(/^[0-9a-f-]{36}$/);
    const line = accessLines().find((e) => e.reqId === id);
    expect(line).toMatchObject({ method: 'GET', route: '/v1/admin/webhook-rejections', url: '/v1/admin/webhook-rejections', status: 200, remoteAddress: '127.0.0.1' });
    expect(typeof line!.durationMs).toBe('number');
  });

  it('reuse a sane X-Request-Id and replace one that is too long or carries other characters', async () => {
    const sane = await t.app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': 'lb-7f3a.42:1' } });
    expect(sane.headers['x-request-id']).toBe('lb-7f3a.42:1');
    expect(accessLines().some((e) => e.reqId === 'lb-7f3a.42:1' && e.status === 200)).toBe(true);
    for (const bad of ['x'.repeat(129), 'id with spaces', 'a"}{"level":"fatal', 'é']) {
      const res = await t.app.inject({ method: 'GET', url: '/health', headers: { 'x-request-id': bad } });
      expect(res.headers['x-request-id']).not.toBe(bad);
      expect(res.headers['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    }
  });

  it('never hold an API key, a signature, a token or a cookie, at trace level', async () => {
    const fc = freeclimbRequest('{"callId":"CA-log-1","callStatus":"ringing","accountId":"AC1"}');
    const tw = twilioRequest({ CallSid: 'CA-log-2', CallStatus: 'ringing' });
    const rc = restcommRequest('CallSid=CA-log-3&CallStatus=ringing', '/status?apiKey=qk-secret-77');
    const sent = [
      await t.app.inject({ method: 'POST', url: fc.url, headers: { ...fc.headers, authorization: `Bearer ${API_KEY}`, cookie: 'session=cookie-secret-99' }, payload: fc.payload }),
      await t.app.inject({ method: 'POST', url: tw.url, headers: tw.headers, payload: tw.payload }),
      await t.app.inject({ method: 'POST', url: rc.url, headers: rc.headers, payload: rc.payload }),
      await t.app.inject({ method: 'GET', url: `/v1/calls?token=${SECRETS.RESTCOMM_WEBHOOK_TOKEN}`, headers: { authorization: `Bearer ${API_KEY}`, 'x-api-key': API_KEY } }),
      await t.app.inject({ method: 'GET', url: '/v1/calls', headers: { authorization: `Bearer ${API_KEY}-wrong` } }),
    ];
    expect(sent.map((r) => r.statusCode)).toEqual([200, 200, 200, 400, 401]);
    const text = lines.join('');
    // The requests were logged: the restcomm one with its token replaced.
    const rcLine = accessLines().find((e) => String(e.url).startsWith('/v1/webhooks/restcomm/status'));
    expect(rcLine?.url).toBe('/v1/webhooks/restcomm/status?apiKey=[redacted]&token=[redacted]');
    expect(accessLines().some((e) => e.url === '/v1/calls?token=[redacted]' && e.status === 400)).toBe(true);
    const forbidden = [
      ...Object.values(SECRETS),
      API_KEY,
      'qk-secret-77',
      'cookie-secret-99',
      fc.headers['freeclimb-signature']!.split('v1=')[1]!,
      tw.headers['x-twilio-signature']!,
    ];
    for (const secret of forbidden) expect(text.includes(secret), `log holds ${secret.slice(0, 12)}…`).toBe(false);
  });
});
