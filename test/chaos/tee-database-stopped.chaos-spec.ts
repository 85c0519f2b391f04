import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, describe, expect, it } from 'vitest';
import { createDatabase, freePort, startEmbeddedPostgres, type DatabaseHandle, type EmbeddedPostgresHandle } from '@lib/db';
import { freeclimbRequest } from '../support/signing.js';
import { startStubApp, type StubApp } from '../support/stub-app.js';
import { API_KEY } from '../support/test-app.js';
import { healthStatus, startLedger, waitUntil, type LedgerProcess } from './support/ledger-process.js';

/**
 * Tee mode with PostgreSQL stopped in the middle (the issue's "fail open"): the service runs as its own process
 * with a PostgreSQL of its own, which the test stops while calls go on. The provider must still get the app's
 * answer, unchanged, for every delivery; the gaps are counted; once PostgreSQL is back, answers are kept again.
 */
const PERCL = JSON.stringify([{ Say: { text: 'Connecting you' } }, { OutDial: { destination: '+18475722071', callingNumber: '+17113334444', timeout: 30, callConnectUrl: 'https://app.example.com/connect', actionUrl: 'https://app.example.com/action' } }]);
const ACC = 'ACe511f7e60a7aaec1435ac251c24f6bd698d8dd14';

let dataDir: string;
let pgServer: EmbeddedPostgresHandle | null = null;
let ledger: LedgerProcess | null = null;
let handle: DatabaseHandle | null = null;
let stub: StubApp | null = null;
afterAll(async () => {
  await ledger?.stop('SIGKILL');
  await handle?.db.destroy();
  await pgServer?.stop();
  await stub?.close();
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

const deliver = async (url: string, callId: string) => {
  const req = freeclimbRequest(JSON.stringify({ accountId: ACC, callId, parentCallId: null, from: '+13125550147', to: '+13125550100', callStatus: 'ringing', direction: 'inbound', requestType: 'inboundCall', conferenceId: null, queueId: null }), '/voice');
  const res = await fetch(url + req.url.replace('/v1/webhooks/', '/v1/tee/'), { method: 'POST', headers: req.headers, body: req.payload, signal: AbortSignal.timeout(15_000) });
  return { status: res.status, type: res.headers.get('content-type'), body: await res.text() };
};

const gaps = async (url: string, what: string) => {
  const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${API_KEY}` } })).text();
  return text
    .split('\n')
    .filter((l) => l.startsWith('ledger_tee_store_gaps_total{') && l.includes(`what="${what}"`))
    .reduce((n, l) => n + Number(l.split(' ').at(-1)), 0);
};

describe('tee mode with PostgreSQL stopped mid-way', () => {
  it('gives the provider the app answer for every call while PostgreSQL is down, counts the gaps, and keeps answers again after', async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'ledger-chaos-tee-'));
    const port = await freePort();
    const startPg = () => startEmbeddedPostgres({ dataDir, port, flags: ['-c', 'fsync=off'] });
    pgServer = await startPg();
    stub = await startStubApp(() => ({ status: 200, headers: { 'content-type': 'application/json' }, body: PERCL }));
    ledger = await startLedger({ DATABASE_URL: pgServer.url, LEDGER_TEE_FREECLIMB_URL: `${stub.base}/fc`, LEDGER_INGEST_DEADLINE_MS: '500', LEDGER_DB_POOL_SIZE: '4' });
    const url = ledger.url;

    const kept = async (callId: string) => (await sql<{ n: number }>`SELECT count(*)::int AS n FROM events WHERE stream_name = ${`appAnswers-freeclimb:${callId}`}`.execute(handle!.db)).rows[0]!.n;
    expect(await deliver(url, 'CA-tee-chaos-before')).toEqual({ status: 200, type: 'application/json', body: PERCL });
    // The answer is written after the reply: stopped before it is, it would be a gap (counted), not a failure.
    handle = createDatabase(pgServer.url, 1);
    await waitUntil('the answer before the outage to be kept', async () => (await kept('CA-tee-chaos-before')) > 0, 30_000);
    await handle.db.destroy();
    handle = null;

    await pgServer.stop();
    pgServer = null;
    await waitUntil('/health to turn not-ready', async () => (ledger!.assertAlive(), (await healthStatus(url)) === 503), 30_000);
    const during = [];
    for (let i = 0; i < 10; i++) during.push(await deliver(url, `CA-tee-chaos-during-${i}`));
    expect(during).toEqual(Array.from({ length: 10 }, () => ({ status: 200, type: 'application/json', body: PERCL })));
    expect(stub.seen.filter((s) => s.body.toString().includes('CA-tee-chaos-during-')).length).toBe(10);
    expect(await gaps(url, 'delivery')).toBeGreaterThanOrEqual(10);
    await waitUntil('the answers\' gaps to be counted', async () => (await gaps(url, 'answer')) >= 1, 30_000);

    pgServer = await startPg();
    await waitUntil('/health to be ready again', async () => (ledger!.assertAlive(), (await healthStatus(url)) === 200), 60_000);
    expect(await deliver(url, 'CA-tee-chaos-after')).toEqual({ status: 200, type: 'application/json', body: PERCL });
    handle = createDatabase(pgServer.url, 1);
    await waitUntil('the answer after the outage to be kept', async () => (await kept('CA-tee-chaos-after')) > 0, 30_000);
    // Nothing is made up for the outage: what could not be stored is absent, not invented later.
    const duringStored = await sql<{ n: number }>`SELECT count(*)::int AS n FROM webhook_receipts WHERE convert_from(body, 'UTF8') LIKE '%CA-tee-chaos-during-%'`.execute(handle.db);
    expect(duringStored.rows[0]!.n).toBe(0);
    ledger.assertAlive();
  });
});
