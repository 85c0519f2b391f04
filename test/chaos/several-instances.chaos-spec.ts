import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@lib/testing';
import { API_KEY } from '../support/test-app.js';
import { startLedger, type LedgerProcess } from './support/ledger-process.js';
import { drive, liveTraffic, tally } from './support/load-driver.js';
import { expectAcknowledgedStoredOnce, expectReadModelsEqualRebuild, waitForProjection } from './support/store-checks.js';

let db: TestDatabase;
const instances: LedgerProcess[] = [];
beforeAll(async () => {
  db = await createTestDatabase(4);
});
afterAll(async () => {
  await Promise.all(instances.map((p) => p.stop('SIGKILL')));
  await db.drop();
});

const projectedBy = async (p: LedgerProcess): Promise<number> => {
  const text = await (await fetch(`${p.url}/metrics`, { headers: { authorization: `Bearer ${API_KEY}` } })).text();
  const m = /^ledger_projection_events_total\{projection="call_legs"\} (\d+)$/m.exec(text);
  return m ? Number(m[1]) : 0;
};

describe('three instances on one PostgreSQL', () => {
  it('spread ingest, project every event exactly once between their three projectors, and equal a single-instance rebuild', async () => {
    for (let i = 0; i < 3; i++) instances.push(await startLedger({ DATABASE_URL: db.url, LEDGER_DB_POOL_SIZE: '4' }));
    const deliveries = liveTraffic('chaos-instances', 600);
    // Round robin: consecutive deliveries of one call land on different instances, and so do retries.
    const outcomes = await drive(deliveries, { target: (i) => instances[i % 3]!.url, concurrency: 24 });
    expect(tally(outcomes)).toEqual({ '200': deliveries.length });
    await expectAcknowledgedStoredOnce(db.db, outcomes);

    await waitForProjection(db.db);
    const events = Number((await sql<{ n: string }>`SELECT count(*)::text AS n FROM events`.execute(db.db)).rows[0]!.n);
    const perInstance = await Promise.all(instances.map(projectedBy));
    console.info(`instances: ${events} events, projected ${perInstance.join(' + ')}`);
    // Each projector counts the events its committed batches applied: together, each event once.
    expect(perInstance.reduce((a, b) => a + b, 0)).toBe(events);
    // The advisory lock hands batches to whichever instance is free; more than one did real work.
    expect(perInstance.filter((n) => n > 0).length).toBeGreaterThan(1);

    await Promise.all(instances.map((p) => p.stop('SIGTERM')));
    expect(await expectReadModelsEqualRebuild(db.db)).toBeGreaterThan(500);
  });
});
