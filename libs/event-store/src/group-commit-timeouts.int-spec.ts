import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, isConnectionError, type DatabaseHandle } from '@lib/db';
import { createTestDatabase, jambonzRecord, type TestDatabase } from '@lib/testing';
import { EventStoreRepository } from './event-store.repository.js';
import { GroupCommitWriter } from './group-commit-writer.js';

/**
 * A database that does not answer in time (a lock held elsewhere stands in for a stalled server: the append
 * really waits inside PostgreSQL) must give a 503 with Retry-After, never a hang and never an "unrecognized"
 * delivery: timeouts are transient, not a bad record.
 */
let tdb: TestDatabase;
let app: DatabaseHandle;
let blocker: pg.Client;
beforeAll(async () => {
  tdb = await createTestDatabase(2);
  // The service's request pool, with a short lock_timeout.
  app = createDatabase(tdb.appUrl, 4, { lockMs: 300, statementMs: 5_000 });
  blocker = new pg.Client({ connectionString: tdb.url });
  await blocker.connect();
});
afterAll(async () => {
  await blocker?.end();
  await app?.db.destroy();
  await tdb?.drop();
});

const record = (legId: string) => jambonzRecord(legId, { headers: {} });

const blockAppends = async () => {
  await blocker.query('BEGIN');
  await blocker.query('LOCK TABLE webhook_receipts IN ACCESS EXCLUSIVE MODE');
};
const unblock = () => blocker.query('ROLLBACK');

describe('GroupCommitWriter against a database that does not answer in time', () => {
  it('a lock_timeout is a transient error: the batch is refused with 503 + Retry-After, not filed as unrecognized', async () => {
    const writer = new GroupCommitWriter(new EventStoreRepository(app.db), { batchMax: 10, queueMax: 100, concurrency: 1 });
    await blockAppends();
    try {
      const settled = await Promise.allSettled([writer.submit(record('lt-1')), writer.submit(record('lt-2'))]);
      for (const s of settled) {
        expect(s.status).toBe('rejected');
        expect((s as PromiseRejectedResult).reason).toMatchObject({ code: 'SERVICE.UNAVAILABLE', retryAfterSec: 1 });
      }
    } finally {
      await unblock();
    }
    const stored = await sql<{ n: string }>`SELECT count(*)::text AS n FROM events WHERE type = 'UnrecognizedWebhook'`.execute(tdb.db);
    expect(stored.rows[0]!.n).toBe('0');
  });

  it('past its deadline a submission gets 503 even while the statement is still waiting, and the writer recovers after', async () => {
    const slow = createDatabase(tdb.appUrl, 2); // no server-side limits: only the writer's deadline can answer
    try {
      const writer = new GroupCommitWriter(new EventStoreRepository(slow.db), { batchMax: 10, queueMax: 100, concurrency: 1, deadlineMs: 200 });
      await blockAppends();
      let inFlight: PromiseSettledResult<unknown>[];
      try {
        // The first waits inside PostgreSQL; the second is still queued behind it.
        inFlight = await Promise.allSettled([writer.submit(record('dl-1')), writer.submit(record('dl-2'))]);
      } finally {
        await unblock();
      }
      for (const s of inFlight) {
        expect(s.status).toBe('rejected');
        expect((s as PromiseRejectedResult).reason).toMatchObject({ code: 'SERVICE.UNAVAILABLE', retryAfterSec: 1 });
      }
      const after = await writer.submit(record('dl-3'));
      expect(after.duplicate).toBe(false);
      // The queued one was dropped, never written; the one in flight may have committed once unblocked.
      const queued = await sql<{ n: string }>`SELECT count(*)::text AS n FROM events WHERE stream_name = 'callLeg-jambonz:dl-2'`.execute(tdb.db);
      expect(queued.rows[0]!.n).toBe('0');
    } finally {
      await slow.db.destroy();
    }
  });

  it('a database that is slow for one delivery but keeps committing others is waited for, not refused', async () => {
    const busy = createDatabase(tdb.appUrl, 2);
    try {
      const writer = new GroupCommitWriter(new EventStoreRepository(busy.db), { batchMax: 1, queueMax: 100, concurrency: 2, deadlineMs: 200 });
      await writer.submit(record('slow-leg'));
      // Hold the stream head of one leg: its next delivery waits inside PostgreSQL, the others go through.
      await blocker.query('BEGIN');
      await blocker.query("SELECT 1 FROM streams WHERE stream_name = 'callLeg-jambonz:slow-leg' FOR UPDATE");
      let slowSettled: string | null = null;
      const slow = writer.submit(record('slow-leg')).then(
        () => (slowSettled = 'committed'),
        () => (slowSettled = 'refused'),
      );
      // Other deliveries keep committing for three deadlines.
      const until = Date.now() + 600;
      let others = 0;
      while (Date.now() < until) {
        await writer.submit(record(`busy-${others}`));
        others += 1;
      }
      expect(others).toBeGreaterThan(3);
      expect(slowSettled).toBeNull();
      await blocker.query('ROLLBACK');
      await slow;
      expect(slowSettled).toBe('committed');
    } finally {
      await busy.db.destroy();
    }
  });

  it('classifies every timeout the pools set as a connection (transient) error', async () => {
    const limited = createDatabase(tdb.appUrl, 1, { statementMs: 50 });
    try {
      const err = await sql`SELECT pg_sleep(2)`.execute(limited.db).then(
        () => null,
        (e: unknown) => e,
      );
      expect((err as { code?: string }).code).toBe('57014');
      expect(isConnectionError(err)).toBe(true);
    } finally {
      await limited.db.destroy();
    }
  });
});
