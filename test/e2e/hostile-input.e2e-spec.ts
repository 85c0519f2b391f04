import { createHash } from 'node:crypto';
import { canonicalFormString } from '@lib/event-store';
import { connect } from 'node:net';
import type { AddressInfo } from 'node:net';
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeTwilioSignature, signTimestampedHmac } from '@lib/providers';
import { API_KEY, SECRETS, startTestApp, type TestApp } from '../support/test-app.js';
import { nowSec } from '../support/signing.js';

/**
 * Hostile input, property-based: whatever arrives, the answer is never a 5xx and the process never dies; an
 * accepted body is stored byte for byte; a refusal is a JSON error. The query routes, fed classic SQL injection,
 * leave the store exactly as it was.
 */
let t: TestApp;
beforeAll(async () => {
  // The rate limit would turn the fuzzer's unsigned requests into 429s; it has tests of its own (access.e2e-spec.ts).
  t = await startTestApp({ ...SECRETS, LEDGER_SIGNATURE_FAILURE_LIMIT: '0' });
  await t.app.listen(0, '127.0.0.1');
});
afterAll(async () => t.close());

const auth = { authorization: `Bearer ${API_KEY}` };
type Reply = { statusCode: number; headers: Record<string, unknown>; body: string; rawPayload: Buffer };

const expectJsonError = (res: Reply, what: string) => {
  expect(res.statusCode, `${what}: ${res.body.slice(0, 200)}`).toBeLessThan(500);
  expect(String(res.headers['content-type']), what).toContain('application/json');
  const parsed = JSON.parse(res.body) as { error?: { code?: unknown; message?: unknown } };
  expect(typeof parsed.error?.code, what).toBe('string');
  expect(typeof parsed.error?.message, what).toBe('string');
};

// ---- generators -------------------------------------------------------------------------------------------

const VALID_JSON = JSON.stringify({ accountId: 'AC1', callId: 'CA-fuzz', callStatus: 'ringing', direction: 'inbound', from: '+1', to: '+2', requestType: 'inboundCall', parentCallId: null });
const VALID_FORM = 'AccountSid=AC1&CallSid=CA-fuzz&CallStatus=ringing&Direction=inbound&From=%2B1&To=%2B2';

const deep = (depth: number, open: string, close: string) => open.repeat(depth) + close.repeat(depth);
const hostileText = fc.oneof(
  fc.constantFrom(
    '{"__proto__":{"polluted":true},"constructor":{"prototype":{"polluted":true}}}',
    '{"callId":{"__proto__":null},"accountId":{"constructor":"x"}}',
    '__proto__[polluted]=1&constructor[prototype][polluted]=1&CallSid=CA1',
    '{"callId":1e999999,"accountId":-1e-999999,"sipStatus":123456789012345678901234567890}',
    '{"callStatus":"ringing","callId":"' + 'A'.repeat(100_000) + '"}',
    '',
    'null',
    '[]',
    '"string"',
    '\u0000\u0001\u0002',
    'CallSid=%ZZ&CallStatus=%&=&&&==',
  ),
  fc.integer({ min: 10, max: 20_000 }).map((d) => deep(d, '[', ']')),
  fc.integer({ min: 10, max: 5_000 }).map((d) => deep(d, '{"a":', '}').replace(/}$/, '1}')),
  fc.json(),
  fc.string({ unit: 'binary', maxLength: 300 }),
);
/** Bytes, not text: invalid UTF-8 (lone continuation bytes, overlongs, encoded surrogates), random bytes, mutations of valid bodies. */
const hostileBody: fc.Arbitrary<Buffer> = fc.oneof(
  hostileText.map((s) => Buffer.from(s, 'utf8')),
  fc.uint8Array({ maxLength: 2_000 }).map((a) => Buffer.from(a)),
  fc.constantFrom(Buffer.from([0xff, 0xfe, 0xfd]), Buffer.from([0xc3, 0x28]), Buffer.from([0xed, 0xa0, 0x80]), Buffer.from([0xc0, 0xaf]), Buffer.from('{"a":"\xff"}', 'latin1')),
  fc
    .tuple(fc.constantFrom(VALID_JSON, VALID_FORM), fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { maxLength: 8 }), fc.nat())
    .map(([valid, flips, cut]) => {
      const b = Buffer.from(valid);
      for (const [at, byte] of flips) b[at % b.length] = byte;
      return cut % 3 === 0 ? b.subarray(0, cut % b.length) : b;
    }),
);
const contentType = fc.oneof(
  fc.constant(undefined),
  fc.constantFrom(
    'application/json',
    'application/x-www-form-urlencoded',
    'application/x-www-form-urlencoded; charset=UTF-8',
    'text/plain',
    'application/json; charset=utf-16',
    'multipart/form-data; boundary=x',
    'application/octet-stream',
    '',
    ';;;',
    'application/json, text/plain',
  ),
  fc.string({ maxLength: 60 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')),
);
const subPath = fc.constantFrom('', '/status', '/a/b/c', '/%2e%2e/%2e%2e', '/' + 'x'.repeat(2000), '/..%00', '/%E0%A4%A');

// ---- webhooks -----------------------------------------------------------------------------------------------

const PROVIDERS = ['freeclimb', 'jambonz', 'twilio', 'restcomm'] as const;
type P = (typeof PROVIDERS)[number];

const signedRequest = (provider: P, body: Buffer, path: string, signed: boolean) => {
  let url = `/v1/webhooks/${provider}${path}`;
  const headers: Record<string, string> = {};
  if (signed) {
    switch (provider) {
      case 'freeclimb':
        headers['freeclimb-signature'] = signTimestampedHmac([SECRETS.FREECLIMB_SIGNING_SECRET], nowSec(), body);
        break;
      case 'jambonz':
        headers['jambonz-signature'] = signTimestampedHmac([SECRETS.JAMBONZ_WEBHOOK_SECRET], nowSec(), body);
        break;
      case 'restcomm':
        url += `?token=${SECRETS.RESTCOMM_WEBHOOK_TOKEN}`;
        break;
      case 'twilio':
        headers['x-twilio-signature'] = computeTwilioSignature(SECRETS.TWILIO_AUTH_TOKEN, `https://ledger.example.com${url}`, [...new URLSearchParams(body.toString('utf8')).entries()]);
        break;
    }
  }
  return { url, headers };
};

describe('every webhook endpoint, fuzzed', () => {
  it.each(PROVIDERS)('%s: never a 5xx; a signed body is stored byte for byte, anything refused is a JSON error', async (provider) => {
    await fc.assert(
      fc.asyncProperty(hostileBody, contentType, subPath, fc.boolean(), fc.dictionary(fc.stringMatching(/^x-[a-z]{1,12}$/), fc.string({ maxLength: 50 }).map((s) => s.replace(/[^\x20-\x7e]/g, '')), { maxKeys: 40 }), async (body, type, path, signed, extra) => {
          const req = signedRequest(provider, body, path, signed);
          const headers = { ...extra, ...req.headers, ...(type === undefined ? {} : { 'content-type': type }) };
          const res = (await t.app.inject({ method: 'POST', url: req.url, headers, payload: body })) as unknown as Reply;
          const what = `${provider} ${req.url.slice(0, 60)} ${type} signed=${signed} ${body.length} bytes`;
          expect(res.statusCode, `${what}: ${res.body.slice(0, 200)}`).toBeLessThan(500);
          if (res.statusCode !== 200) {
            expectJsonError(res, what);
            // Only an authentic delivery may be stored; refusals are of the request itself (a path that `..`
            // takes out of the webhook routes is a 404).
            if (signed) expect([400, 404, 413, 414, 415], what).toContain(res.statusCode);
            return;
          }
          expect(signed, `${what} was accepted unsigned`).toBe(true);
          const receipt = JSON.parse(res.body) as { receiptId: string; duplicate: boolean };
          const stored = await t.db.db.selectFrom('webhook_receipts').select(['body', 'body_sha256']).where('id', '=', receipt.receiptId).executeTakeFirstOrThrow();
          if (receipt.duplicate && (provider === 'twilio' || provider === 'restcomm')) {
            // A form delivery duplicates any body with the same signed parameter string (README, The receipt):
            // the original's bytes are the ones kept.
            expect(canonicalFormString(stored.body), what).toBe(canonicalFormString(body));
            return;
          }
          expect(stored.body.equals(body), what).toBe(true);
          expect(Buffer.from(stored.body_sha256).equals(createHash('sha256').update(body).digest()), what).toBe(true);
        },
      ),
      { numRuns: 150 },
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('survives header floods: too many or too large headers get 431 from the HTTP layer, and the service carries on', async () => {
    const { port } = t.app.getHttpServer().address() as AddressInfo;
    const raw = (request: string) =>
      new Promise<string>((resolve) => {
        const socket = connect(port, '127.0.0.1');
        let answer = '';
        socket.on('data', (d) => (answer += d.toString('latin1')));
        socket.on('close', () => resolve(answer));
        socket.on('error', () => resolve(answer));
        socket.end(request);
      });
    const many = Array.from({ length: 5_000 }, (_, i) => `X-Flood-${i}: ${'v'.repeat(20)}\r\n`).join('');
    const huge = `X-Huge: ${'h'.repeat(200_000)}\r\n`;
    for (const headers of [many, huge]) {
      const answer = await raw(`POST /v1/webhooks/freeclimb HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n${headers}\r\n{}`);
      expect(answer).toMatch(/^HTTP\/1\.1 431 /);
    }
    // Many headers within Node's limits reach the app, which answers as usual.
    const within = Object.fromEntries(Array.from({ length: 300 }, (_, i) => [`x-f-${i}`, 'v']));
    const res = (await t.app.inject({ method: 'POST', url: '/v1/webhooks/freeclimb', headers: { ...within, 'content-type': 'application/json' }, payload: '{}' })) as unknown as Reply;
    expectJsonError(res, 'many headers');
    expect(res.statusCode).toBe(401);
    const health = await fetch(`http://127.0.0.1:${port}/health`);
    expect(health.status).toBe(200);
  });
});

// ---- import -------------------------------------------------------------------------------------------------

const goodLine = fc
  .record({
    provider: fc.constantFrom(...PROVIDERS),
    body: fc.oneof(hostileText, fc.constant(VALID_JSON), fc.constant(VALID_FORM)),
    contentType: fc.constantFrom('application/json', 'application/x-www-form-urlencoded', null),
  })
  .map((l) => JSON.stringify({ ...l, receivedAt: '2026-01-05T14:00:00Z' }));
const badLine = fc.oneof(
  hostileText,
  fc.json(),
  goodLine.map((l) => l.replace('"provider"', '"__proto__"')),
  goodLine.map((l) => l.replace('{', '{"constructor":{"prototype":{"x":1}},')),
  goodLine.map((l) => l.replace('2026-01-05T14:00:00Z', '99999-99-99')),
  goodLine.map((l) => l.slice(0, Math.floor(l.length / 2))),
);

describe('POST /v1/import, fuzzed', () => {
  it('never a 5xx; every good line is stored byte for byte, every bad one rejected alone', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.oneof(goodLine.map((l) => ({ good: true, l })), badLine.map((l) => ({ good: false, l }))), { maxLength: 30 }),
        fc.constantFrom('application/x-ndjson', 'application/x-ndjson; charset=utf-8'),
        fc.constantFrom('\n', '\r\n'),
        async (lines, type, eol) => {
          const payload = lines.map((x) => x.l.replace(/[\r\n]/g, ' ')).join(eol) + eol;
          const res = (await t.app.inject({ method: 'POST', url: '/v1/import', headers: { ...auth, 'content-type': type }, payload })) as unknown as Reply;
          expect(res.statusCode, res.body.slice(0, 300)).toBe(200);
          const answer = JSON.parse(res.body) as { imported: number; duplicates: number; rejected: { line: number }[]; rejectedNotListed: number };
          const rejected = new Set(answer.rejected.map((r) => r.line));
          for (const [i, x] of lines.entries()) {
            if (!x.good) continue;
            expect(rejected.has(i + 1), `good line ${i + 1} rejected: ${JSON.stringify(answer.rejected.find((r) => r.line === i + 1))}`).toBe(false);
            const line = JSON.parse(x.l.replace(/[\r\n]/g, ' ')) as { provider: string; body: string };
            const sha = createHash('sha256').update(Buffer.from(line.body, 'utf8')).digest();
            const stored = await t.db.db.selectFrom('webhook_receipts').select('body').where('provider', '=', line.provider).where('body_sha256', '=', sha).executeTakeFirst();
            expect(stored?.body.equals(Buffer.from(line.body, 'utf8')), `good line ${i + 1} not stored byte for byte`).toBe(true);
          }
          expect(answer.imported + answer.duplicates + answer.rejected.length + answer.rejectedNotListed).toBe(lines.filter((x) => x.l.trim() !== '').length);
        },
      ),
      { numRuns: 60 },
    );
  });

  it('answers a JSON error for invalid UTF-8, a wrong or missing content type, and no body', async () => {
    const cases: { type?: string; payload: Buffer | string }[] = [
      { type: 'application/x-ndjson', payload: Buffer.from([0xff, 0xfe, 0x0a, 0xc3, 0x28, 0x0a]) },
      { type: 'application/json', payload: '{}' },
      { type: 'text/plain', payload: 'x' },
      { payload: 'x' },
      { type: 'application/x-ndjson', payload: '' },
      { type: 'application/x-ndjson', payload: '['.repeat(100_000) },
    ];
    for (const c of cases) {
      const res = (await t.app.inject({ method: 'POST', url: '/v1/import', headers: { ...auth, ...(c.type ? { 'content-type': c.type } : {}) }, payload: c.payload })) as unknown as Reply;
      expect(res.statusCode, `${c.type}: ${res.body.slice(0, 200)}`).toBeLessThan(500);
      if (res.statusCode !== 200) expectJsonError(res, String(c.type));
    }
  });
});

// ---- query parameters ---------------------------------------------------------------------------------------

const INJECTIONS = [
  "' OR '1'='1",
  "' OR 1=1 --",
  "'; DROP TABLE events; --",
  "'); DELETE FROM webhook_receipts; --",
  '" OR ""="',
  "1; UPDATE events SET data = '{}'",
  "' UNION SELECT NULL, version() --",
  "x' AND pg_sleep(5) --",
  '%27%20OR%201%3D1',
  '\\x27; TRUNCATE events; --',
  "$$; DROP TABLE call_legs_g1; $$",
  "ACe511*' OR '1'='1",
  'nul\u0000byte',
];
const GET_ROUTES = ['/v1/calls', '/v1/calls/{id}', '/v1/calls/{id}/tree', '/v1/calls/{id}/events', '/v1/recordings', '/v1/export/calls', '/v1/audit/verify', '/v1/analytics/summary', '/v1/analytics/timeseries', '/v1/admin/projections'];
// Not minPosition: a position never reached is a documented 503 after 3 s (read-your-writes, projections.e2e-spec.ts).
const PARAMS = ['provider', 'accountId', 'status', 'direction', 'from', 'to', 'since', 'until', 'rootOnly', 'final', 'limit', 'cursor', 'callId', 'format', 'tree', 'interval', 'groupBy', '__proto__', 'constructor', 'limit[]'];

/** Row counts plus a digest of every stored byte that a statement could change. */
const fingerprint = async () =>
  (
    await sql<{ f: string }>`SELECT concat_ws('|',
      (SELECT count(*) FROM events), (SELECT md5(string_agg(encode(hash, 'hex'), ',' ORDER BY global_position)) FROM events),
      (SELECT count(*) FROM webhook_receipts), (SELECT md5(string_agg(encode(body_sha256, 'hex'), ',' ORDER BY id)) FROM webhook_receipts),
      (SELECT md5(string_agg(c::text, ',' ORDER BY provider, call_id)) FROM call_legs c),
      (SELECT count(*) FROM pg_tables WHERE schemaname = 'public')) AS f`.execute(t.db.db)
  ).rows[0]!.f;

describe('query parameters, fuzzed', () => {
  beforeAll(async () => {
    // Something to protect: a few stored and projected deliveries.
    const body = Buffer.from(VALID_JSON);
    const r = signedRequest('freeclimb', body, '/status', true);
    expect((await t.app.inject({ method: 'POST', url: r.url, headers: { ...r.headers, 'content-type': 'application/json' }, payload: body })).statusCode).toBe(200);
    await waitProjected();
  });
  const waitProjected = async () => {
    for (let i = 0; i < 400; i++) {
      const res = await t.app.inject({ method: 'GET', url: '/v1/calls/CA-fuzz?provider=freeclimb', headers: auth });
      if (res.statusCode === 200) return;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error('the fuzz fixture was never projected');
  };

  it('never answer a 5xx, and refusals are JSON errors', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...GET_ROUTES),
        fc.oneof(fc.constantFrom(...INJECTIONS), fc.string({ unit: 'binary', maxLength: 40 }), fc.constant('CA-fuzz')),
        fc.array(fc.tuple(fc.oneof(fc.constantFrom(...PARAMS), fc.string({ maxLength: 10 })), fc.oneof(fc.constantFrom(...INJECTIONS), fc.string({ unit: 'binary', maxLength: 40 }), fc.integer().map(String), fc.constantFrom('1e308', '-1', '99999999999999999999999', 'NaN', 'true', '2026-01-01T00:00:00Z', 'csv', 'hour'))), { maxLength: 5 }),
        async (route, id, params) => {
          const qs = params.map(([k, v]) => `${encodeURIComponent(k)}=${encodeURIComponent(v)}`).join('&');
          const url = `${route.replace('{id}', encodeURIComponent(id))}${qs ? `?${qs}` : ''}`;
          const res = (await t.app.inject({ method: 'GET', url, headers: auth })) as unknown as Reply;
          expect(res.statusCode, `${url}: ${res.body.slice(0, 200)}`).toBeLessThan(500);
          if (res.statusCode >= 400) expectJsonError(res, url);
        },
      ),
      { numRuns: 400 },
    );
  }, 180_000);

  it('treat classic SQL injection as data: the store is unchanged and nothing matches that should not', async () => {
    const before = await fingerprint();
    for (const payload of INJECTIONS) {
      const p = encodeURIComponent(payload);
      for (const url of [
        `/v1/calls/${p}`,
        `/v1/calls/${p}/tree`,
        `/v1/calls/${p}/events?tree=true`,
        `/v1/calls?accountId=${p}`,
        `/v1/calls?from=${p}`,
        `/v1/calls?to=${p}`,
        `/v1/calls?provider=${p}`,
        `/v1/calls?cursor=${p}`,
        `/v1/recordings?callId=${p}`,
        `/v1/export/calls?format=ndjson&accountId=${p}`,
        `/v1/audit/verify?callId=${p}`,
        `/v1/analytics/summary?accountId=${p}`,
      ]) {
        const res = (await t.app.inject({ method: 'GET', url, headers: auth })) as unknown as Reply;
        expect(res.statusCode, `${url}: ${res.body.slice(0, 200)}`).toBeLessThan(500);
        if (res.statusCode === 200 && url.startsWith('/v1/calls?')) expect(JSON.parse(res.body).data, url).toEqual([]);
        if (res.statusCode === 200 && url.startsWith('/v1/export/')) expect(res.body.trim(), url).toBe('');
        if (res.statusCode === 200 && url.startsWith('/v1/audit/')) expect(JSON.parse(res.body).streamsChecked, url).toBe(0);
      }
    }
    expect(await fingerprint()).toBe(before);
  });
});
