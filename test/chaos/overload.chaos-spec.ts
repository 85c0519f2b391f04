import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@lib/testing';
import { startLedger, type LedgerProcess } from './support/ledger-process.js';
import { drive, liveTraffic, tally } from './support/load-driver.js';
import { expectAcknowledgedStoredOnce } from './support/store-checks.js';

const QUEUE_MAX = 64;
const MB = 1024 * 1024;

let db: TestDatabase;
let ledger: LedgerProcess | null = null;
beforeAll(async () => {
  db = await createTestDatabase(4);
});
afterAll(async () => {
  await ledger?.stop('SIGKILL');
  await db.drop();
});

describe('overload', () => {
  it('refuses what exceeds the bounded ingest queue with an immediate 503, keeps memory bounded, and every 200 is durable', async () => {
    // A small queue and one small batch at a time, so that 256 concurrent senders are far more than it takes.
    ledger = await startLedger({ DATABASE_URL: db.url, LEDGER_INGEST_QUEUE_MAX: String(QUEUE_MAX), LEDGER_INGEST_BATCH_MAX: '16', LEDGER_INGEST_CONCURRENCY: '1', LEDGER_DB_POOL_SIZE: '4' });
    const deliveries = liveTraffic('chaos-overload', 1200);
    // Warm up (JIT, pools, first projector batches) before taking the baseline.
    await drive(deliveries.slice(0, 300), { target: () => ledger!.url, concurrency: 8 });
    const baseline = ledger.rss()!;
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, ledger!.rss() ?? 0)), 50);
    const outcomes = await drive(deliveries.slice(300), { target: () => ledger!.url, concurrency: 256, timeoutMs: 60_000 });
    clearInterval(sampler);

    const statuses = tally(outcomes);
    console.info(`overload: ${JSON.stringify(statuses)}; RSS ${(baseline / MB).toFixed(0)} MB -> peak ${(peak / MB).toFixed(0)} MB`);
    expect(Object.keys(statuses).sort()).toEqual(['200', '503']);
    expect(statuses['503']).toBeGreaterThan(0);
    for (const o of outcomes.filter((x) => x.status === 503)) {
      expect(o.error).toBe('SERVICE.UNAVAILABLE');
      expect(o.retryAfter).toBe('1');
    }
    expect(peak - baseline).toBeLessThan(150 * MB);
    expect(ledger.child.exitCode).toBeNull();
    // Every 200 is stored once under its receipt; a refused delivery is stored at most once (only when it is
    // the simulator's retry of one that was taken).
    const check = await expectAcknowledgedStoredOnce(db.db, outcomes);
    expect(check.acknowledged).toBe(statuses['200']);
  });
});
