import { sql } from 'kysely';
import { expect } from 'vitest';
import type { Database } from '@lib/db';
import { callLegsProjection, Projector } from '@lib/projections';
import { waitUntil } from './ledger-process.js';
import type { Outcome } from './load-driver.js';

interface StoredReceipt {
  id: string;
  provider: string;
  sha: string;
  body: Buffer;
  events: number;
}

const storedReceipts = async (db: Database): Promise<Map<string, StoredReceipt[]>> => {
  const rows = await sql<StoredReceipt>`
    SELECT r.id::text, r.provider, encode(r.body_sha256, 'hex') AS sha, r.body,
      (SELECT count(*) FROM events e WHERE e.receipt_id = r.id)::int AS events
    FROM webhook_receipts r`.execute(db);
  const byKey = new Map<string, StoredReceipt[]>();
  for (const r of rows.rows) byKey.set(`${r.provider}:${r.sha}`, [...(byKey.get(`${r.provider}:${r.sha}`) ?? []), r]);
  return byKey;
};

/**
 * Every acknowledged delivery (200) is stored exactly once, byte for byte, under the receipt id it was given,
 * with the events its receipt listed; a delivery that got no answer, or an error, is stored at most once.
 */
export const expectAcknowledgedStoredOnce = async (db: Database, outcomes: readonly Outcome[]): Promise<{ acknowledged: number; unanswered: number; unansweredStored: number }> => {
  const stored = await storedReceipts(db);
  let acknowledged = 0;
  let unanswered = 0;
  let unansweredStored = 0;
  const problems: string[] = [];
  for (const o of outcomes) {
    const rows = stored.get(`${o.provider}:${o.sha256}`) ?? [];
    if (rows.length > 1) problems.push(`#${o.index} stored ${rows.length} times`);
    if (o.status === 200) {
      acknowledged += 1;
      const row = rows[0];
      if (!row) {
        problems.push(`#${o.index} got 200 (receipt ${o.receipt!.receiptId}) but is not in the store`);
        continue;
      }
      if (row.id !== o.receipt!.receiptId) problems.push(`#${o.index}: receipt ${o.receipt!.receiptId} answered, ${row.id} stored`);
      if (!row.body.equals(o.body)) problems.push(`#${o.index}: stored body differs from the bytes sent`);
      if (!o.receipt!.duplicate && row.events !== o.receipt!.events.length) problems.push(`#${o.index}: ${o.receipt!.events.length} events answered, ${row.events} stored`);
    } else {
      unanswered += 1;
      if (rows.length === 1) unansweredStored += 1;
    }
  }
  expect(problems.slice(0, 20)).toEqual([]);
  return { acknowledged, unanswered, unansweredStored };
};

/** True once the call_legs projection has applied every event in the store. */
export const projectionCaughtUp = async (db: Database): Promise<boolean> => {
  const r = await sql<{ behind: boolean }>`
    SELECT EXISTS (
      SELECT 1 FROM projection_checkpoints c JOIN events e ON (e.transaction_id, e.global_position) > (c.last_xid, c.last_position)
      WHERE c.name = 'call_legs'
    ) OR NOT EXISTS (SELECT 1 FROM projection_checkpoints WHERE name = 'call_legs') AS behind`.execute(db);
  return !r.rows[0]!.behind;
};

export const waitForProjection = (db: Database, timeoutMs = 120_000) => waitUntil('the call_legs projection to catch up', () => projectionCaughtUp(db), timeoutMs, 200);

/** The whole read model in a stable order; hourly cells that a leg moved out of (all zero) carry nothing and are left out. */
export const readModels = async (db: Database) => ({
  legs: (await sql`SELECT * FROM call_legs ORDER BY provider, call_id`.execute(db)).rows,
  recordings: (await sql`SELECT * FROM recordings ORDER BY provider, call_id, recording_id`.execute(db)).rows,
  hourly: (await sql`SELECT * FROM call_leg_hourly WHERE legs <> 0 OR talk_ms <> 0 OR ring_ms <> 0 OR ring_n <> 0 OR machine <> 0 ORDER BY hour NULLS FIRST, provider, account_id NULLS FIRST, direction NULLS FIRST, status, is_root`.execute(db)).rows,
});

/**
 * The live read model (as the service left it) equals a single-instance rebuild from the store: the rebuild
 * runs here, in the test process, into a new generation, and the two are compared row by row.
 */
export const expectReadModelsEqualRebuild = async (db: Database): Promise<number> => {
  const live = await readModels(db);
  const projector = new Projector(db, [callLegsProjection]);
  await projector.rebuild();
  const rebuilt = await readModels(db);
  expect(live.legs.length).toBe(rebuilt.legs.length);
  expect(live.legs).toEqual(rebuilt.legs);
  expect(live.recordings).toEqual(rebuilt.recordings);
  expect(live.hourly).toEqual(rebuilt.hourly);
  return live.legs.length;
};
