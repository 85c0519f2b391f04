import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY, SECRETS, startTestApp, type TestApp } from '../support/test-app.js';

let t: TestApp;
const logs: string[] = [];
beforeAll(async () => {
  t = await startTestApp({ ...SECRETS, LOG_LEVEL: 'info' }, { logDestination: { write: (line: string) => void logs.push(line) } });
});
afterAll(async () => t.close());

const auth = { authorization: `Bearer ${API_KEY}` };
const ndjson = (lines: unknown[]) => lines.map((l) => (typeof l === 'string' ? l : JSON.stringify(l))).join('\n') + '\n';
const importBody = (payload: string, headers: Record<string, string> = {}) =>
  t.app.inject({ method: 'POST', url: '/v1/import', headers: { 'content-type': 'application/x-ndjson', ...auth, ...headers }, payload });

const fcBody = (i: number, requestType = 'inboundCall') =>
  JSON.stringify({ accountId: 'AC1', callId: `CAimport${i}`, callStatus: 'ringing', direction: 'inbound', from: '+1', to: '+2', parentCallId: null, requestType });

describe('POST /v1/import', () => {
  it('imports good lines through the same storage and translation, rejecting bad lines alone', async () => {
    const lines = [
      { provider: 'freeclimb', receivedAt: '2026-01-05T14:02:10.118Z', contentType: 'application/json', body: fcBody(1), path: '/voice' },
      '{not json',
      { provider: 'plivo', receivedAt: '2026-01-05T14:02:10Z', body: 'x' },
      { provider: 'jambonz', receivedAt: 'yesterday', body: '{}' },
      { provider: 'restcomm', receivedAt: '2026-01-05T14:05:51Z', contentType: 'application/x-www-form-urlencoded', body: 'CallSid=CAr1&AccountSid=AC2&CallStatus=ringing&Direction=inbound&From=%2B1&To=%2B2' },
      '',
      { provider: 'freeclimb', receivedAt: '2026-01-05T14:02:11Z', body: fcBody(1) },
      { provider: 'freeclimb', receivedAt: '2026-01-05T14:02:12Z', body: 'garbage that is not json' },
    ];
    const res = await importBody(ndjson(lines));
    expect(res.statusCode).toBe(200);
    const out = res.json();
    expect(out).toMatchObject({ imported: 3, duplicates: 1 });
    expect(out.rejected.map((r: { line: number }) => r.line)).toEqual([2, 3, 4]);
    expect(out.rejected[1].error).toMatch(/provider/);
    expect(out.rejected[2].error).toMatch(/receivedAt/);

    // Receipts of one batch are inserted sorted by their dedupe key (no deadlock between batches), not in line order.
    const receipt = await t.db.db.selectFrom('webhook_receipts').selectAll().where('source', '=', 'import').orderBy('received_at').executeTakeFirstOrThrow();
    expect(receipt.received_at.toISOString()).toBe('2026-01-05T14:02:10.118Z');
    expect(receipt.signature_status).toBe('not-checked');
    expect(receipt.path).toBe('voice');
    expect(receipt.body.toString()).toBe(fcBody(1));
    const types = await t.db.db.selectFrom('events').select('type').where('receipt_id', '=', receipt.id).orderBy('global_position').execute();
    expect(types.map((r) => r.type)).toEqual(['CallInitiated', 'CallRinging']);
    const unrec = await t.db.db.selectFrom('events').select('type').where('type', '=', 'UnrecognizedWebhook').execute();
    expect(unrec.length).toBeGreaterThan(0);
  });

  it('dedupes against live deliveries too', async () => {
    const body = fcBody(77);
    const live = await t.app.inject({ method: 'POST', url: '/v1/webhooks/freeclimb', headers: { 'content-type': 'application/json' }, payload: body });
    expect(live.statusCode).toBe(401); // secret configured: the unsigned live copy is refused
    const first = (await importBody(ndjson([{ provider: 'freeclimb', receivedAt: '2026-01-01T00:00:00Z', body }]))).json();
    const second = (await importBody(ndjson([{ provider: 'freeclimb', receivedAt: '2026-01-02T00:00:00Z', body }]))).json();
    expect(first).toMatchObject({ imported: 1, duplicates: 0 });
    expect(second).toMatchObject({ imported: 0, duplicates: 1 });
  });

  it('streams a large upload in batches', async () => {
    const n = 5000;
    const lines = Array.from({ length: n }, (_, i) => ({ provider: 'freeclimb', receivedAt: '2026-02-01T00:00:00Z', body: fcBody(10_000 + i, 'callStatus') }));
    const res = await importBody(ndjson(lines));
    expect(res.json()).toMatchObject({ imported: n, duplicates: 0, rejected: [] });
  });

  it('keeps every line around bad ones in the middle of a multi-chunk upload, naming each bad line and why', async () => {
    // 2,000 rows make a chunk: the bad lines sit in the second and in the third chunk.
    const n = 7000;
    const lines: unknown[] = Array.from({ length: n }, (_, i) => ({ provider: 'freeclimb', receivedAt: '2026-03-01T00:00:00Z', body: fcBody(20_000 + i, 'callStatus') }));
    lines[2999] = '{"provider":"freeclimb", cut short';
    // Valid ISO-8601 and a valid JavaScript date, but PostgreSQL has no year 0: the database refuses this row alone.
    lines[5499] = { provider: 'freeclimb', receivedAt: '0000-01-01T00:00:00Z', body: fcBody(99_999, 'callStatus') };
    const res = await importBody(ndjson(lines));
    expect(res.statusCode).toBe(200);
    const out = res.json();
    expect(out).toMatchObject({ imported: n - 2, duplicates: 0, rejectedNotListed: 0 });
    expect(out.rejected.map((r: { line: number }) => r.line)).toEqual([3000, 5500]);
    expect(out.rejected[0].error).toMatch(/not valid JSON/);
    expect(out.rejected[1].error).toMatch(/could not be stored: .*(range|date)/i);
    const stored = await t.db.db
      .selectFrom('webhook_receipts')
      .select((eb) => eb.fn.countAll<string>().as('n'))
      .where('received_at', '=', new Date('2026-03-01T00:00:00Z'))
      .executeTakeFirstOrThrow();
    expect(Number(stored.n)).toBe(n - 2);
  });

  it('streams its progress as NDJSON to a caller that accepts it, and logs it', async () => {
    const n = 1200;
    const payload = ndjson([
      ...Array.from({ length: n }, (_, i) => ({ provider: 'freeclimb', receivedAt: '2026-04-01T00:00:00Z', body: fcBody(40_000 + i, 'callStatus') })),
      'oops',
    ]);
    const res = await importBody(payload, { accept: 'application/x-ndjson' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
    const answer = res.body.trim().split('\n').map((l) => JSON.parse(l) as Record<string, Record<string, unknown>>);
    const progress = answer.filter((l) => 'progress' in l).map((l) => l.progress!);
    expect(progress.length).toBeGreaterThan(0);
    expect(answer.at(-1)).toEqual({ result: { imported: n, duplicates: 0, rejected: [{ line: n + 1, error: expect.stringMatching(/not valid JSON/) }], rejectedNotListed: 0 } });
    expect(progress.at(-1)).toMatchObject({ linesRead: n + 1, bytesRead: Buffer.byteLength(payload), bytesTotal: Buffer.byteLength(payload), linesLeft: 0, imported: n, rejected: 1 });
    expect(progress.at(-1)!.linesPerSec).toBeGreaterThan(0);

    const logged = logs.join('').split('\n').filter((l) => l.includes('"context":"Import"'));
    expect(logged.some((l) => l.includes(`${n + 1} lines read`) && l.includes('lines/s'))).toBe(true);
  });

  it('answers with one JSON object, as before, to a caller that does not ask for progress', async () => {
    const res = await importBody(ndjson([{ provider: 'freeclimb', receivedAt: '2026-04-02T00:00:00Z', body: fcBody(50_000) }]), { accept: 'application/json' });
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    expect(res.json()).toEqual({ imported: 1, duplicates: 0, rejected: [], rejectedNotListed: 0 });
  });

  it('needs an API key', async () => {
    const res = await t.app.inject({ method: 'POST', url: '/v1/import', headers: { 'content-type': 'application/x-ndjson' }, payload: '{}\n' });
    expect(res.statusCode).toBe(401);
    expect(res.json()).toMatchObject({ error: { code: 'AUTH.API_KEY_INVALID' } });
    const wrong = await importBody('{}\n', { authorization: 'Bearer nope' });
    expect(wrong.statusCode).toBe(401);
  });

  it('refuses another content type with 415', async () => {
    const res = await importBody('{}', { 'content-type': 'application/json' });
    expect(res.statusCode).toBe(415);
    expect(res.json().error.code).toBe('IMPORT.UNSUPPORTED_MEDIA_TYPE');
  });
});
