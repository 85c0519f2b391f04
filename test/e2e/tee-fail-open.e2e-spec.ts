import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY, SECRETS, startTestApp, type TestApp } from '../support/test-app.js';
import { freeclimbRequest } from '../support/signing.js';
import { startStubApp, type StubApp } from '../support/stub-app.js';

/**
 * Fail open: with the store out of the service's reach (its role may no longer connect, and its connections are
 * cut, as when PostgreSQL goes away in the middle of a call), the provider still gets the app's answer, and the
 * gap is counted. Once the store is back, answers are kept again.
 */
const ACC = 'ACe511f7e60a7aaec1435ac251c24f6bd698d8dd14';
const PERCL = JSON.stringify([{ Say: { text: 'Hello' } }, { Hangup: {} }]);
let t: TestApp;
let stub: StubApp;
const logs: string[] = [];

beforeAll(async () => {
  stub = await startStubApp(() => ({ status: 200, headers: { 'content-type': 'application/json' }, body: PERCL }));
  t = await startTestApp(
    { ...SECRETS, LEDGER_TEE_FREECLIMB_URL: `${stub.base}/fc`, LEDGER_INGEST_DEADLINE_MS: '300', LOG_LEVEL: 'warn' },
    { logDestination: { write: (line: string) => void logs.push(line) } },
  );
});
afterAll(async () => {
  await t.close();
  await stub.close();
});

const deliver = (callId: string) => {
  const req = freeclimbRequest(JSON.stringify({ accountId: ACC, callId, parentCallId: null, from: '+1', to: '+2', callStatus: 'ringing', direction: 'inbound', requestType: 'inboundCall', conferenceId: null, queueId: null }), '/voice');
  return t.app.inject({ method: 'POST', url: req.url.replace('/v1/webhooks/', '/v1/tee/'), headers: req.headers, payload: req.payload });
};
const database = async () => (await sql<{ d: string }>`SELECT current_database() AS d`.execute(t.db.db)).rows[0]!.d;
const gaps = async (what: string) => {
  const text = (await t.app.inject({ method: 'GET', url: '/metrics', headers: { authorization: `Bearer ${API_KEY}` } })).body;
  return text
    .split('\n')
    .filter((l) => l.startsWith('ledger_tee_store_gaps_total{') && l.includes(`what="${what}"`))
    .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
};

describe('tee fails open', () => {
  it('returns the app answer while the store is unreachable, counts the gap, and keeps answers again once it is back', async () => {
    const db = await database();
    expect((await deliver('CA-open-before')).statusCode).toBe(200);

    // The store goes away for the service: no new connection, and every open one is cut.
    await sql`REVOKE CONNECT ON DATABASE ${sql.id(db)} FROM PUBLIC, ledger_app`.execute(t.db.db);
    await sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND usename = 'ledger_app'`.execute(t.db.db);
    try {
      const res = await deliver('CA-open-during');
      expect(res.statusCode).toBe(200);
      expect(res.headers['content-type']).toBe('application/json');
      expect(res.body).toBe(PERCL);
      expect(stub.seen.at(-1)!.body.toString()).toContain('CA-open-during');
      expect(await gaps('delivery')).toBeGreaterThanOrEqual(1);
      expect(logs.some((l) => l.includes('"level":"warn"') && l.includes('the delivery could not be stored'))).toBe(true);
      // The answer could not be kept either; its gap is counted once its write has failed.
      const deadline = Date.now() + 10_000;
      while ((await gaps('answer')) < 1) {
        if (Date.now() > deadline) throw new Error('the answer gap was never counted');
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      await sql`GRANT CONNECT ON DATABASE ${sql.id(db)} TO PUBLIC, ledger_app`.execute(t.db.db);
    }
    const during = await sql<{ n: number }>`SELECT count(*)::int AS n FROM webhook_receipts WHERE convert_from(body, 'UTF8') LIKE '%CA-open-during%'`.execute(t.db.db);
    expect(during.rows[0]!.n).toBe(0);

    expect((await deliver('CA-open-after')).statusCode).toBe(200);
    const deadline = Date.now() + 10_000;
    for (;;) {
      const kept = await sql<{ n: number }>`SELECT count(*)::int AS n FROM events WHERE stream_name = 'appAnswers-freeclimb:CA-open-after'`.execute(t.db.db);
      if (kept.rows[0]!.n > 0) break;
      if (Date.now() > deadline) throw new Error('the answer after the outage was not kept');
      await new Promise((r) => setTimeout(r, 20));
    }
  });
});
