import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { CREDENTIALS_FILE, createDatabase, type DatabaseHandle, type EmbeddedCredentials } from '@lib/db';
import { healthStatus, startLedger, waitUntil, type LedgerProcess } from './support/ledger-process.js';
import { liveTraffic, post, tally, trackRunnerStalls, type Outcome } from './support/load-driver.js';
import { expectAcknowledgedStoredOnce, waitForProjection } from './support/store-checks.js';

/**
 * The service in its default mode (no DATABASE_URL): it starts and owns the embedded PostgreSQL under
 * LEDGER_DATA_DIR. The test stalls that server (SIGSTOP: it accepts TCP and never answers, the case no
 * connection error reveals) and then kills its postmaster outright; the service must answer 503 at once while
 * it cannot commit, bring the server back by itself, and lose nothing it acknowledged.
 */
let dataDir: string;
let ledger: LedgerProcess | null = null;
let handle: DatabaseHandle | null = null;
const stopped: number[] = [];
afterAll(async () => {
  for (const pid of stopped) {
    try {
      process.kill(pid, 'SIGCONT');
    } catch {
      /* gone */
    }
  }
  await handle?.db.destroy();
  await ledger?.stop('SIGTERM');
  if (dataDir) await rm(dataDir, { recursive: true, force: true });
});

const postmasterPid = (): number => Number(readFileSync(join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);

/** The postmaster and every backend it forked (Linux /proc). */
const serverProcesses = (postmaster: number): number[] => {
  const children = readdirSync('/proc')
    .filter((d) => /^\d+$/.test(d))
    .filter((d) => {
      try {
        return /^PPid:\s+(\d+)$/m.exec(readFileSync(`/proc/${d}/status`, 'utf8'))?.[1] === String(postmaster);
      } catch {
        return false;
      }
    })
    .map(Number);
  return [postmaster, ...children];
};

describe('embedded PostgreSQL: stalled, then killed, under a running service', () => {
  it('answers 503 with Retry-After within about a second while PostgreSQL is stopped, restarts it after SIGKILL, and keeps every acknowledged delivery', async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'ledger-chaos-embedded-'));
    ledger = await startLedger({ LEDGER_DATA_DIR: dataDir, LEDGER_DB_POOL_SIZE: '4' });
    const url = ledger.url;
    expect(ledger.output()).toMatch(/app and projector roles/);

    // A provider-like sender: a delivery refused with 503 (or unanswered) is sent again after a short pause.
    const deliveries = liveTraffic('chaos-embedded', 300);
    const queue = deliveries.map((_, i) => i);
    const outcomes: Outcome[] = [];
    let draining = false;
    const worker = async () => {
      while (!(draining && queue.length === 0)) {
        const i = queue.shift();
        if (i === undefined) {
          await new Promise((r) => setTimeout(r, 20));
          continue;
        }
        const o = await post(url, deliveries[i]!, i, 10_000);
        outcomes.push(o);
        if (o.status !== 200) {
          queue.push(i);
          await new Promise((r) => setTimeout(r, 50));
        }
      }
    };
    const workers = Promise.all(Array.from({ length: 6 }, worker));
    const answeredSince = (t: number, status: number) => ledger!.assertAlive() ?? outcomes.filter((o) => o.startedAt >= t && o.status === status).length;
    const acknowledged = () => outcomes.filter((o) => o.status === 200).length;

    // 1. Stalled: SIGSTOP the postmaster and its backends.
    await waitUntil('60 deliveries acknowledged', () => acknowledged() >= 60);
    const pids = serverProcesses(postmasterPid());
    for (const pid of pids) {
      process.kill(pid, 'SIGSTOP');
      stopped.push(pid);
    }
    const stallAt = performance.now();
    const runner = trackRunnerStalls();
    await waitUntil('ingest to answer 503 while PostgreSQL is stopped', () => answeredSince(stallAt, 503) >= 20, 60_000);
    const stalled = outcomes.filter((o) => o.startedAt >= stallAt);
    const refusals = stalled.filter((o) => o.status === 503);
    const slowest = Math.max(...refusals.map((o) => o.ms));
    console.info(`stalled PostgreSQL: ${JSON.stringify(tally(stalled))}; 503 latency max ${slowest} ms, median ${refusals.map((o) => o.ms).sort((a, b) => a - b)[refusals.length >> 1]} ms`);
    for (const o of refusals) {
      expect(o.error).toBe('SERVICE.UNAVAILABLE');
      expect(o.retryAfter).toBe('1');
      // A hang guard, not a speed test: the deadline is 1 s, the bound leaves room for a loaded machine, and
      // time this test process spent stalled is not the service's.
      expect(o.ms).toBeLessThan(3_000 + runner.stalledMs());
    }
    // Nothing hangs: every request started during the stall got an answer (503, or a 200 from before it).
    expect(stalled.every((o) => o.status === 503 || o.status === 200)).toBe(true);
    runner.stop();
    expect(await healthStatus(url)).toBe(503);
    for (const pid of pids) process.kill(pid, 'SIGCONT');
    stopped.length = 0;
    const contAt = performance.now();
    await waitUntil('/health to be ready again after SIGCONT', async () => ledger!.assertAlive() ?? (await healthStatus(url)) === 200, 60_000);
    await waitUntil('deliveries acknowledged again after SIGCONT', () => answeredSince(contAt, 200) >= 30, 60_000);

    // 2. Killed: SIGKILL the postmaster; the service must bring it back by itself.
    const killed = postmasterPid();
    process.kill(killed, 'SIGKILL');
    const killAt = performance.now();
    await waitUntil('the service to restart the embedded PostgreSQL', () => ledger!.assertAlive() ?? /embedded PostgreSQL: restarted on port/.test(ledger!.output()), 60_000);
    expect(postmasterPid()).not.toBe(killed);
    await waitUntil('deliveries acknowledged after the restart', () => answeredSince(killAt, 200) >= 30, 60_000);
    console.info(`killed PostgreSQL: back and acknowledging after ${Math.round(performance.now() - killAt)} ms`);
    expect(ledger.output()).toMatch(/exited unexpectedly \(SIGKILL\)/);
    expect(ledger.output()).toMatch(/restart attempt 1\//);

    draining = true;
    await workers;
    expect(ledger.child.exitCode).toBeNull();
    const statuses = tally(outcomes);
    console.info(`embedded chaos: ${JSON.stringify(statuses)}`);
    // Only "taken", "come back later", and (while the server was being killed) no answer: never a 500.
    expect(Object.keys(statuses).filter((k) => k !== '200' && k !== '503' && !k.startsWith('none:'))).toEqual([]);
    expect(new Set(outcomes.filter((o) => o.status === 200).map((o) => o.index)).size).toBe(deliveries.length);

    // Everything acknowledged is in the store, exactly once; read as the owner, from the credentials file.
    const credentials = JSON.parse(readFileSync(join(dataDir, CREDENTIALS_FILE), 'utf8')) as EmbeddedCredentials;
    const port = Number(readFileSync(join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[3]);
    handle = createDatabase(`postgres://postgres:${encodeURIComponent(credentials.owner)}@127.0.0.1:${port}/postgres`, 2);
    await expectAcknowledgedStoredOnce(handle.db, outcomes);
    await waitForProjection(handle.db);
  });
});
