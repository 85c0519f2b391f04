import { connect, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { SECRETS, startTestApp, type TestApp } from '../support/test-app.js';

/**
 * The HTTP edge with real sockets (node:net), since app.inject() has no connection, no parser and no timeouts:
 * slow headers, trickled bodies, connection floods, unsigned webhooks and the budget of buffered bodies.
 */

interface RawAnswer {
  status: number | null;
  headers: string;
  body: string;
  /** Whether the server closed the connection (end or reset). */
  closed: boolean;
}

const sockets: Socket[] = [];
afterEach(() => {
  for (const s of sockets.splice(0)) s.destroy();
});

const open = (port: number): Promise<Socket> =>
  new Promise((resolve, reject) => {
    const s = connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
    sockets.push(s);
  });

/** Everything the server sends until it closes the connection. */
const untilClosed = (s: Socket): Promise<RawAnswer> =>
  new Promise((resolve) => {
    let text = '';
    s.on('data', (d: Buffer) => (text += d.toString('latin1')));
    s.on('error', () => undefined);
    s.once('close', () => {
      const [head = '', ...rest] = text.split('\r\n\r\n');
      const m = /^HTTP\/1\.1 (\d{3})/.exec(head);
      resolve({ status: m ? Number(m[1]) : null, headers: head.toLowerCase(), body: rest.join('\r\n\r\n'), closed: true });
    });
  });

/** The first complete answer head the server sends (the connection may stay open). */
const firstAnswer = (s: Socket): Promise<RawAnswer> =>
  new Promise((resolve) => {
    let text = '';
    const onData = (d: Buffer) => {
      text += d.toString('latin1');
      const end = text.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = text.slice(0, end);
      const length = Number(/content-length:\s*(\d+)/i.exec(head)?.[1] ?? 0);
      if (text.length < end + 4 + length) return;
      s.off('data', onData);
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(head)?.[1] ?? 0), headers: head.toLowerCase(), body: text.slice(end + 4, end + 4 + length), closed: false });
    };
    s.on('data', onData);
    s.on('error', () => undefined);
  });

const listen = async (t: TestApp): Promise<number> => {
  await t.app.listen({ port: 0, host: '127.0.0.1' });
  return (t.app.getHttpServer().address() as AddressInfo).port;
};

const health = async (port: number): Promise<number> => {
  const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(5000) });
  await res.arrayBuffer();
  return res.status;
};

const postHead = (path: string, contentLength: number, extra: Record<string, string> = {}) =>
  `POST ${path} HTTP/1.1\r\nHost: ledger.example.com\r\nContent-Type: application/json\r\nContent-Length: ${contentLength}\r\n` +
  Object.entries(extra)
    .map(([k, v]) => `${k}: ${v}\r\n`)
    .join('') +
  '\r\n';

describe('timeouts', () => {
  let t: TestApp;
  let port: number;
  beforeAll(async () => {
    t = await startTestApp({ ...SECRETS, LEDGER_HEADERS_TIMEOUT_MS: '500', LEDGER_REQUEST_TIMEOUT_MS: '1500' });
    port = await listen(t);
  });
  afterAll(() => t.close());

  it('disconnects a client whose headers stop half-way (slowloris) with a JSON 408', async () => {
    const s = await open(port);
    const answer = untilClosed(s);
    s.write('POST /v1/webhooks/freeclimb HTTP/1.1\r\nHost: ledger.example.com\r\nX-Slow: ');
    const a = await answer;
    expect(a.status).toBe(408);
    expect(JSON.parse(a.body)).toEqual({ error: { code: 'REQUEST.TIMEOUT', message: expect.any(String) } });
  });

  it('cuts off a body that trickles in slower than the request timeout allows', async () => {
    const s = await open(port);
    const answer = untilClosed(s);
    const size = 4000;
    s.write(postHead('/v1/webhooks/freeclimb', size, { 'FreeClimb-Signature': 't=1,v1=00' }));
    let sent = 0;
    // 10 bytes every 50 ms would need 20 s: far past the 1.5 s request timeout.
    const timer = setInterval(() => {
      if (s.destroyed || sent >= size) return;
      s.write('x'.repeat(10));
      sent += 10;
    }, 50);
    const a = await answer;
    clearInterval(timer);
    expect(sent).toBeLessThan(size);
    expect(a.closed).toBe(true);
    // The answer is the JSON 408 when the timeout finds the request still arriving.
    if (a.status !== null) {
      expect(a.status).toBe(408);
      expect(JSON.parse(a.body).error.code).toBe('REQUEST.TIMEOUT');
    }
  });
});

describe('connection cap', () => {
  let t: TestApp;
  let port: number;
  const CAP = 20;
  beforeAll(async () => {
    // Header timeout long enough that only the cap can free the sockets during the test.
    t = await startTestApp({ ...SECRETS, LEDGER_MAX_CONNECTIONS: String(CAP), LEDGER_HEADERS_TIMEOUT_MS: '60000' });
    port = await listen(t);
  });
  afterAll(() => t.close());

  it('sheds the oldest idle connections past the cap, so that /health stays reachable under a flood of half-sent requests', async () => {
    const flood = 3 * CAP;
    let closedByServer = 0;
    const closes: Promise<void>[] = [];
    for (let i = 0; i < flood; i++) {
      const s = await open(port);
      closes.push(new Promise((r) => s.once('close', () => ((closedByServer += 1), r()))));
      s.on('error', () => undefined);
      s.write('GET /health HTTP/1.1\r\nHost: x\r\nX-Slow: ');
    }
    // Every connection past the cap pushed one of the held ones out.
    await Promise.all(closes.slice(0, flood - CAP));
    expect(closedByServer).toBeGreaterThanOrEqual(flood - CAP);
    // The newest are still held open by the server: the cap is a cap, not a wipe.
    expect(closedByServer).toBeLessThan(flood);
    expect(await health(port)).toBe(200);
  });
});

describe('webhooks without a signature, and the budget of buffered bodies', () => {
  let t: TestApp;
  let port: number;
  beforeAll(async () => {
    // The smallest budget there can be: one largest body (1 MiB) at a time.
    t = await startTestApp({ ...SECRETS, LEDGER_MAX_BODY_BYTES_IN_FLIGHT: '1024' });
    port = await listen(t);
  });
  afterAll(() => t.close());

  for (const [provider, path] of [
    ['freeclimb', '/v1/webhooks/freeclimb/status'],
    ['jambonz', '/v1/webhooks/jambonz/status'],
    ['twilio', '/v1/webhooks/twilio/status'],
    ['restcomm', '/v1/webhooks/restcomm/status'],
  ] as const) {
    it(`refuses an unsigned ${provider} delivery with 401 before its body is sent, and closes the connection`, async () => {
      const s = await open(port);
      const answer = untilClosed(s);
      // Headers only, announcing a body just under the 1 MiB limit that is never sent.
      s.write(postHead(path, 1024 * 1024 - 10));
      const a = await answer;
      expect(a.status).toBe(401);
      expect(a.headers).toContain('connection: close');
      expect(JSON.parse(a.body)).toEqual({ error: { code: 'WEBHOOK.SIGNATURE_INVALID', message: expect.any(String) } });
    });
  }

  it('answers 503 with Retry-After before reading a body that would overrun the in-flight budget, and recovers once bodies are done', async () => {
    const holder = await open(port);
    const held = firstAnswer(holder);
    const big = 1024 * 1024 - 10;
    holder.write(postHead('/v1/webhooks/freeclimb', big, { 'FreeClimb-Signature': 't=1,v1=00' }));
    holder.write('x'.repeat(1000));
    // A probe with a complete 100-byte body: refused while the holder's reservation stands (the loop only
    // covers the moment before the server has read the holder's head).
    let refused: RawAnswer | null = null;
    for (let i = 0; i < 50 && refused?.status !== 503; i++) {
      const s = await open(port);
      const answer = firstAnswer(s);
      s.write(postHead('/v1/webhooks/jambonz', 100, { 'Jambonz-Signature': 't=1,v1=00' }) + 'x'.repeat(100));
      refused = await answer;
    }
    expect(refused!.status).toBe(503);
    expect(refused!.headers).toMatch(/retry-after: \d+/);
    expect(refused!.headers).toContain('connection: close');
    expect(JSON.parse(refused!.body).error.code).toBe('SERVICE.UNAVAILABLE');

    // The holder finishes its body: it is answered (401, its signature is a dummy) and its bytes are released.
    holder.write('x'.repeat(big - 1000));
    expect((await held).status).toBe(401);
    const s = await open(port);
    const answer = firstAnswer(s);
    s.write(postHead('/v1/webhooks/jambonz', 2, { 'Jambonz-Signature': 't=1,v1=00' }) + '{}');
    expect((await answer).status).toBe(401);
  });
});

describe('headers too large', () => {
  let t: TestApp;
  let port: number;
  beforeAll(async () => {
    t = await startTestApp(SECRETS);
    port = await listen(t);
  });
  afterAll(() => t.close());

  it('are answered 431 in the JSON error envelope', async () => {
    const s = await open(port);
    const answer = untilClosed(s);
    s.write(`GET /health HTTP/1.1\r\nHost: x\r\nX-Flood: ${'a'.repeat(64 * 1024)}\r\n\r\n`);
    const a = await answer;
    expect(a.status).toBe(431);
    expect(a.headers).toContain('content-type: application/json');
    expect(JSON.parse(a.body)).toEqual({ error: { code: 'REQUEST.HEADERS_TOO_LARGE', message: expect.any(String) } });
  });
});
