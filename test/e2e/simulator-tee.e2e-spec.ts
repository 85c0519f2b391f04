import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatDifference, simulate, type SimulationRun } from '@lib/simulator';
import { runCheck } from '../../apps/simulator/src/check-runner.js';
import { sendLive } from '../../apps/simulator/src/live-sender.js';
import { startTeeApp, type RunningTeeApp } from '../../apps/simulator/src/tee-app.js';
import { expectIntent } from '@lib/simulator';
import { API_KEY, SECRETS, startTestApp, type TestApp } from '../support/test-app.js';

/**
 * `npm run simulate -- --tee`: the simulated app stands behind the ledger, answers with each dialect's dial
 * commands, checks every delivery's signature on its side, and `--check` compares intent with outcome on the trees.
 */
const secrets = { freeclimb: SECRETS.FREECLIMB_SIGNING_SECRET, jambonz: SECRETS.JAMBONZ_WEBHOOK_SECRET, twilio: SECRETS.TWILIO_AUTH_TOKEN, restcomm: SECRETS.RESTCOMM_WEBHOOK_TOKEN };
const quiet = () => undefined;

let t: TestApp;
let app: RunningTeeApp;
let target: string;
let run: SimulationRun;
beforeAll(async () => {
  const baseTimeMs = Math.floor(Date.now() / 1000) * 1000;
  const kinds = ['simring', 'sequential-dial', 'call-blast', 'outbound-busy', 'rest-child', 'inbound-answered'] as const;
  run = simulate({ seed: 'e2e-tee', calls: 40, provider: 'mixed', baseTimeMs, mode: 'live', days: 0, rate: 50, maxTalkSec: 60, kinds: [...kinds] });
  for (const c of run.expected.calls) {
    const intent = expectIntent(run.calls.find((x) => x.index === c.index)!);
    if (intent.length > 0) c.intent = intent;
  }
  app = await startTeeApp(run.calls, secrets);
  t = await startTestApp({
    ...SECRETS,
    LEDGER_TEE_FREECLIMB_URL: `${app.base}/freeclimb`,
    LEDGER_TEE_JAMBONZ_URL: `${app.base}/jambonz`,
    LEDGER_TEE_TWILIO_URL: `${app.base}/twilio`,
    LEDGER_TEE_RESTCOMM_URL: `${app.base}/restcomm`,
    // Intent is under test here, not overload: a delivery on a busy test machine is waited for, not refused.
    LEDGER_INGEST_DEADLINE_MS: '20000',
  });
  await t.app.listen(0, '127.0.0.1');
  target = `http://127.0.0.1:${(t.app.getHttpServer().address() as AddressInfo).port}`;
});
afterAll(async () => {
  await t.close();
  await app.close();
});

describe('npm run simulate -- --tee', () => {
  it('every delivery reaches the app with a signature that verifies there, and --check finds intent and outcome as expected', async () => {
    const withIntent = run.expected.calls.filter((c) => c.intent);
    // The run covers each dialect's dial commands and both discrepancies the simulated app causes.
    expect(new Set(withIntent.map((c) => c.provider))).toEqual(new Set(['freeclimb', 'jambonz', 'twilio', 'restcomm']));
    const kinds = withIntent.flatMap((c) => c.intent!.flatMap((i) => i.discrepancies.map((d) => d.split(':')[0])));
    expect(new Set(kinds)).toEqual(new Set(['target-not-attempted', 'unexplained-child']));

    const sent = await sendLive(run.deliveries, { target, publicUrl: 'https://ledger.example.com', secrets, concurrency: 8, leadMs: 240_000, now: () => Date.now(), progress: quiet, route: 'tee' });
    expect(sent.firstErrors).toEqual([]);
    expect(sent).toMatchObject({ sent: run.deliveries.length, ok: run.deliveries.length, errors: 0 });
    expect(app.stats.firstRefusals).toEqual([]);
    expect(app.stats).toMatchObject({ requests: run.deliveries.length, verified: run.deliveries.length, refused: 0 });

    const check = await runCheck(run.expected, { target, apiKey: API_KEY, concurrency: 4, timeoutMs: 30_000, progress: quiet });
    expect(check.errors).toEqual([]);
    expect(check.differences.map(formatDifference)).toEqual([]);
    // Every delivery and every answer was kept (a gap would be fail-open at work, not a difference of intent).
    const metrics = await (await fetch(`${target}/metrics`, { headers: { authorization: `Bearer ${API_KEY}` } })).text();
    expect(metrics.split('\n').filter((l) => l.startsWith('ledger_tee_store_gaps_total{'))).toEqual([]);

    // The check does compare intent: an expectation without the discrepancy the app caused fails.
    const wrong = structuredClone(run.expected);
    const flagged = wrong.calls.find((c) => c.intent?.some((i) => i.discrepancies.some((d) => d.startsWith('target-not-attempted'))))!;
    wrong.calls = [{ ...flagged, intent: flagged.intent!.map((i) => ({ ...i, discrepancies: i.discrepancies.filter((d) => !d.startsWith('target-not-attempted')) })) }];
    const bad = await runCheck(wrong, { target, apiKey: API_KEY, concurrency: 1, timeoutMs: 1_000, progress: quiet });
    expect(bad.differences.map(formatDifference).join('\n')).toContain('intent discrepancies');
  });
});
