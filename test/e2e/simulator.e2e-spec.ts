import type { AddressInfo } from 'node:net';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatDifference, importLine, simulate } from '@lib/simulator';
import { runCheck } from '../../apps/simulator/src/check-runner.js';
import { sendLive } from '../../apps/simulator/src/live-sender.js';
import { API_KEY, SECRETS, startTestApp, type TestApp } from '../support/test-app.js';

/**
 * The simulator against the whole service on a real port: traffic posted over HTTP exactly as `npm run simulate`
 * posts it, then the `--check` comparison through the query API (GET /v1/calls/{id}/tree, /v1/analytics/summary).
 */
let t: TestApp;
let target: string;
// A ledger of its own per test: the KPI totals of one run must not include the other's traffic.
beforeEach(async () => {
  t = await startTestApp(SECRETS);
  await t.app.listen(0, '127.0.0.1');
  target = `http://127.0.0.1:${(t.app.getHttpServer().address() as AddressInfo).port}`;
});
afterEach(async () => t.close());

const secrets = { freeclimb: SECRETS.FREECLIMB_SIGNING_SECRET, jambonz: SECRETS.JAMBONZ_WEBHOOK_SECRET, twilio: SECRETS.TWILIO_AUTH_TOKEN, restcomm: SECRETS.RESTCOMM_WEBHOOK_TOKEN };
const quiet = () => undefined;

describe('npm run simulate against a running ledger', () => {
  it('posts a mixed live run, every delivery accepted, and --check finds no difference', async () => {
    // The ledger accepts signatures within ±5 min of its clock: the simulated traffic starts now.
    const baseTimeMs = Math.floor(Date.now() / 1000) * 1000;
    const run = simulate({ seed: 'e2e-live', calls: 50, provider: 'mixed', baseTimeMs, mode: 'live', days: 0, rate: 50, maxTalkSec: 60 });
    const sent = await sendLive(run.deliveries, { target, publicUrl: 'https://ledger.example.com', secrets, concurrency: 8, leadMs: 240_000, now: () => Date.now(), progress: quiet });
    expect(sent.firstErrors).toEqual([]);
    expect(sent).toMatchObject({ sent: run.deliveries.length, ok: run.deliveries.length, duplicates: run.expected.retries, errors: 0 });
    run.expected.maxPosition = sent.maxPosition!;

    const check = await runCheck(run.expected, { target, apiKey: API_KEY, concurrency: 4, timeoutMs: 30_000, progress: quiet });
    expect(check.errors).toEqual([]);
    expect(check.differences.map(formatDifference)).toEqual([]);
    expect(check.callsChecked).toBe(50);
  });

  it('imports a --out NDJSON file through /v1/import, and --check finds no difference', async () => {
    const run = simulate({ seed: 'e2e-import', calls: 60, provider: 'mixed', baseTimeMs: Date.UTC(2026, 1, 1), mode: 'import', days: 30, rate: 1, maxTalkSec: 300 });
    const res = await fetch(`${target}/v1/import`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/x-ndjson' },
      body: run.deliveries.map(importLine).join('\n') + '\n',
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ imported: run.deliveries.length - run.expected.retries, duplicates: run.expected.retries, rejected: [] });

    const check = await runCheck(run.expected, { target, apiKey: API_KEY, concurrency: 4, timeoutMs: 30_000, progress: quiet });
    expect(check.errors).toEqual([]);
    expect(check.differences.map(formatDifference)).toEqual([]);
  });

  it('backfills 2018 traffic received now (queues and action-hooks-only apps included), and --check holds it to its own past', async () => {
    const importedAtMs = Math.floor(Date.now() / 1000) * 1000;
    const kinds = ['queue', 'action-hooks-only', 'inbound-answered', 'outbound-no-answer', 'simring'] as const;
    const run = simulate({ seed: 'e2e-backfill', calls: 60, provider: 'mixed', baseTimeMs: Date.UTC(2018, 2, 10), mode: 'import', days: 3, rate: 1, maxTalkSec: 120, kinds, importedAtMs });
    expect(run.expected.calls.filter((c) => c.queues).length).toBeGreaterThan(0);
    const res = await fetch(`${target}/v1/import`, {
      method: 'POST',
      headers: { authorization: `Bearer ${API_KEY}`, 'content-type': 'application/x-ndjson' },
      body: run.deliveries.map(importLine).join('\n') + '\n',
    });
    expect(res.status).toBe(200);
    expect(await res.json()).toMatchObject({ imported: run.deliveries.length - run.expected.retries, rejected: [] });

    const check = await runCheck(run.expected, { target, apiKey: API_KEY, concurrency: 4, timeoutMs: 30_000, progress: quiet });
    expect(check.errors).toEqual([]);
    expect(check.differences.map(formatDifference)).toEqual([]);

    // The check does read the queues and the provider clocks: an expectation that is wrong about them fails.
    const queued = run.expected.calls.find((c) => c.queues)!;
    const restcomm = run.expected.calls.find((c) => c.provider === 'restcomm')!;
    const wrong = structuredClone(run.expected);
    wrong.calls = [
      { ...structuredClone(queued), queues: queued.queues!.map((q) => ({ ...q, result: 'leave' })) },
      { ...structuredClone(restcomm), legs: restcomm.legs.map((l, i) => (i === 0 ? { ...l, startedAt: new Date(importedAtMs).toISOString() } : l)) },
    ];
    const bad = await runCheck(wrong, { target, apiKey: API_KEY, concurrency: 2, timeoutMs: 30_000, progress: quiet });
    expect(bad.differences.map((d) => d.path.replace(/^call \d+ \(([a-z-]+), ([a-z]+) .*?\)/, '$1 $2').replace(/ leg \S+/, ' leg'))).toEqual(
      expect.arrayContaining([expect.stringMatching(/^queue twilio leg queue QU\w+ QueueLeft$/), `${restcomm.kind} restcomm leg startedAt`]),
    );
  });
});
