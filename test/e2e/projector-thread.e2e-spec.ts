import { readdirSync, readFileSync } from 'node:fs';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Projector } from '@lib/projections';
import { ThreadedProjector } from '../../apps/ledger/src/projections/projector.thread.js';
import { API_KEY, readyProjector, SECRETS, startTestApp, type TestApp } from '../support/test-app.js';
import { freeclimbRequest } from '../support/signing.js';

/**
 * LEDGER_PROJECTOR=worker: the projector folds in a worker thread of its own; the service's event loop only
 * stands in for it. Everything the inline projector did must still hold across the thread boundary.
 */
const auth = { authorization: `Bearer ${API_KEY}` };
const ACC = 'AC' + 'e'.repeat(40);
let n = 0;
const delivery = () => {
  const callId = `CA${(++n).toString(16).padStart(40, '0')}`;
  const body = JSON.stringify({ accountId: ACC, callId, parentCallId: null, conferenceId: null, queueId: null, requestType: 'inboundCall', from: '+13125550147', to: '+13125550100', callStatus: 'ringing', direction: 'inbound' });
  return { callId, request: freeclimbRequest(body) };
};

const ingest = async (t: TestApp) => {
  const { callId, request } = delivery();
  const res = await t.app.inject({ method: 'POST', url: request.url, headers: request.headers, payload: request.payload });
  expect(res.statusCode).toBe(200);
  return { callId, position: (res.json() as { position: string }).position };
};

const legRows = async (t: TestApp, callId: string) =>
  (await sql<{ call_id: string }>`SELECT call_id FROM call_legs WHERE provider = 'freeclimb' AND call_id = ${callId}`.execute(t.db.db)).rows;

const health = async (t: TestApp) => {
  const res = await t.app.inject({ method: 'GET', url: '/health' });
  expect(res.statusCode).toBe(200);
  return (res.json() as { details: Record<string, Record<string, unknown>> }).details.projector!;
};

const metricValue = (text: string, series: string): number => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
};

describe('the projector in a worker thread', () => {
  let t: TestApp;
  let projector: ThreadedProjector;
  const logs: Record<string, unknown>[] = [];
  beforeAll(async () => {
    // A long gathering window: only a read-your-writes hold that crosses the thread boundary ends it before the
    // 3 s that ?minPosition= waits.
    t = await startTestApp(
      { ...SECRETS, LEDGER_PROJECTOR: 'worker', LEDGER_PROJECTOR_GATHER_MS: '10000', LOG_LEVEL: 'warn' },
      { logDestination: { write: (line: string) => void logs.push(JSON.parse(line) as Record<string, unknown>) } },
    );
    projector = (await readyProjector(t)) as ThreadedProjector;
  });
  afterAll(async () => {
    await t.close();
    // Shutdown: the thread was asked to stop and has ended, before the pools closed.
    expect(projector.health().state).toBe('stopped');
    expect(projector.currentThread).toBeNull();
  });

  it('stands in for the projector on the request event loop, and /health says the thread runs', async () => {
    expect(t.app.get(Projector)).toBeInstanceOf(ThreadedProjector);
    await expect.poll(async () => (await health(t)).state).toBe('running');
    expect(await health(t)).toMatchObject({ status: 'up', mode: 'worker', restarts: 0 });
  });

  it.runIf(process.platform === 'linux')('runs at the nice value of LEDGER_PROJECTOR_THREAD_NICE (10), this thread alone', () => {
    // Field 19 of /proc/<pid>/task/<tid>/stat, counted after the parenthesised command name.
    const niceOf = (tid: string) => {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[16]);
    };
    const nices = readdirSync('/proc/self/task').map(niceOf);
    expect(nices.filter((n) => n === 10)).toHaveLength(1);
    expect(niceOf(String(process.pid))).toBe(0);
  });

  it('applies the events appended by ingest, and a minPosition request ends its gathering window', async () => {
    const first = await ingest(t);
    // The first wake-up after a quiet spell runs at once.
    expect(await projector.waitFor(first.position, 5_000)).toBe(true);
    // This one arrives inside the 10 s window the first batch opened: without the hold reaching the thread, the
    // request below would wait out its 3 s and answer 503 PROJECTION.LAGGING.
    const second = await ingest(t);
    const res = await t.app.inject({ method: 'GET', url: `/v1/calls/${second.callId}?minPosition=${second.position}`, headers: auth });
    expect(res.statusCode).toBe(200);
    expect(await legRows(t, second.callId)).toHaveLength(1);
  });

  it("shows the thread's metrics in /metrics", async () => {
    const res = await t.app.inject({ method: 'GET', url: '/metrics', headers: auth });
    expect(res.statusCode).toBe(200);
    const text = res.body;
    // Produced in the worker thread's registry:
    expect(metricValue(text, 'ledger_projection_batch_seconds_count{projection="call_legs"}')).toBeGreaterThan(0);
    // Counted on the service's event loop from the thread's messages:
    expect(metricValue(text, 'ledger_projection_events_total{projection="call_legs"}')).toBeGreaterThanOrEqual(2);
    expect(metricValue(text, 'ledger_projector_thread_up')).toBe(1);
    // Each metric once: the two registries do not overlap.
    const types = text.split('\n').filter((l) => l.startsWith('# TYPE '));
    expect(new Set(types).size).toBe(types.length);
  });

  it('answers status and rebuilds through the thread', async () => {
    const before = (await projector.status())[0]!;
    const res = await t.app.inject({ method: 'POST', url: '/v1/admin/projections/rebuild', headers: { ...auth, 'content-type': 'application/json' }, payload: '{"name":"call_legs"}' });
    expect(res.statusCode).toBe(202);
    await expect.poll(async () => (await projector.status())[0]!.generation, { timeout: 15_000 }).toBe(before.generation + 1);
    await expect(projector.rebuild('nope')).rejects.toThrow(/unknown projection/);
  });

  it('restarts the thread when it dies, logs it, and ingest goes on meanwhile', async () => {
    const thread = projector.currentThread!;
    const exited = new Promise((r) => thread.once('exit', r));
    void thread.terminate();
    await exited;
    // Ingest does not need the projector: this delivery is stored while the thread is down or starting again.
    const during = await ingest(t);
    await expect.poll(async () => (await health(t)).state, { timeout: 15_000 }).toBe('running');
    expect(await health(t)).toMatchObject({ restarts: 1, lastExit: expect.stringContaining('exit code') });
    expect(projector.currentThread).not.toBe(thread);
    expect(logs.some((l) => l.context === 'Projector' && String(l.msg).includes('the projector thread ended'))).toBe(true);
    // The new thread resumes from the checkpoint: what arrived while it was down is applied, and so is what follows.
    const after = await ingest(t);
    const res = await t.app.inject({ method: 'GET', url: `/v1/calls/${after.callId}?minPosition=${after.position}`, headers: auth });
    expect(res.statusCode).toBe(200);
    expect(await legRows(t, during.callId)).toHaveLength(1);
    const metrics = (await t.app.inject({ method: 'GET', url: '/metrics', headers: auth })).body;
    expect(metricValue(metrics, 'ledger_projector_thread_restarts_total')).toBe(1);
  });
});

describe('the projector inline (LEDGER_PROJECTOR=inline)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp({ ...SECRETS, LEDGER_PROJECTOR: 'inline' });
    await readyProjector(t);
  });
  afterAll(async () => t.close());

  it('runs on the request event loop, honours minPosition, and exposes the same metrics', async () => {
    expect(t.app.get(Projector)).not.toBeInstanceOf(ThreadedProjector);
    expect(await health(t)).toMatchObject({ status: 'up', mode: 'inline', state: 'running' });
    const d = await ingest(t);
    const res = await t.app.inject({ method: 'GET', url: `/v1/calls/${d.callId}?minPosition=${d.position}`, headers: auth });
    expect(res.statusCode).toBe(200);
    const metrics = (await t.app.inject({ method: 'GET', url: '/metrics', headers: auth })).body;
    expect(metricValue(metrics, 'ledger_projection_batch_seconds_count{projection="call_legs"}')).toBeGreaterThan(0);
  });
});
