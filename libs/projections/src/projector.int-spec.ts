import { createHash, randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { EventStoreRepository, type WebhookRecord } from '@lib/event-store';
import { newEvent } from '@lib/ledger';
import { createTestDatabase, recordingProjection, type TestDatabase } from '@lib/testing';
import type { ProjectionDefinition } from './projection.js';
import { Projector } from './projector.js';
import { readAfter, START } from './event-reader.js';

const recorder = (name: string) => recordingProjection(name);

let tdb: TestDatabase;
let store: EventStoreRepository;
beforeAll(async () => {
  tdb = await createTestDatabase(20);
  store = new EventStoreRepository(tdb.db);
});
afterAll(async () => tdb.drop());

const record = (): WebhookRecord => {
  const body = Buffer.from(randomUUID());
  const leg = randomUUID();
  return {
    receipt: {
      provider: 'jambonz', body, bodySha256: createHash('sha256').update(body).digest(), contentType: null, path: '', query: '',
      headers: {}, remoteAddr: null, receivedAt: new Date(), source: 'live', signatureStatus: 'unverified', signatureTimestamp: null,
    },
    events: [newEvent('CallRinging', leg, {}), newEvent('CallAnswered', leg, {})],
  };
};

const positionsSeen = async (name: string) =>
  (await sql<{ position: string; n: string }>`SELECT position::text, count(*)::text AS n FROM ${sql.table(name)} GROUP BY position`.execute(tdb.db)).rows;
const allPositions = async () => (await sql<{ p: string }>`SELECT global_position::text AS p FROM events`.execute(tdb.db)).rows.map((r) => r.p);

describe('Projector', () => {
  it('never skips an event whose transaction commits after later positions were committed', async () => {
    const p = recorder('late_commit');
    const projector = new Projector(tdb.db, [p]);
    await projector.init();
    await store.appendBatch([record()]);
    // Hold a transaction open that has taken a low position, while later appends commit.
    const slow = new pg.Client({ connectionString: tdb.url });
    await slow.connect();
    await slow.query('BEGIN');
    const early = record();
    await slow.query(
      `INSERT INTO webhook_receipts (provider, body_sha256, body, path, query, headers, received_at, source, signature_status, account_key)
       VALUES ('jambonz', $1, $2, '', '', '{}', now(), 'live', 'unverified', 'jambonz:') RETURNING id`,
      [early.receipt.bodySha256, early.receipt.body],
    ).then(async (r) =>
      slow.query(
        `INSERT INTO events (event_id, stream_name, stream_version, type, data, metadata, receipt_id, received_at, hash, account_key)
         VALUES ($1, 'callLeg-jambonz:slow', 1, 'CallRinging', '{}', '{"provider":"jambonz","legId":"slow"}', $2, now(), '\\x00', 'jambonz:')`,
        [randomUUID(), r.rows[0].id],
      ),
    );
    for (let i = 0; i < 5; i++) await store.appendBatch([record()]);
    await projector.runUntilCaughtUp();
    const before = await positionsSeen('late_commit');
    await slow.query('COMMIT');
    await slow.end();
    // While the slow transaction was open the cursor stopped below it: only the first append was read, so the
    // later ones could not be passed over before the slow one became visible.
    expect(before).toHaveLength(2);
    await projector.runUntilCaughtUp();
    const after = await positionsSeen('late_commit');
    const everything = await allPositions();
    expect(after.map((r) => r.position).sort()).toEqual(everything.sort());
    expect(after.every((r) => r.n === '1')).toBe(true);
  });

  it('two instances on one database process every event exactly once', async () => {
    const name = 'two_instances';
    const a = new Projector(tdb.db, [recorder(name)], { batchSize: 7, pollMs: 20 });
    const b = new Projector(tdb.db, [recorder(name)], { batchSize: 7, pollMs: 20 });
    await Promise.all([a.init(), b.init()]);
    a.start();
    b.start();
    await Promise.all(Array.from({ length: 30 }, () => store.appendBatch([record(), record()])));
    const total = (await allPositions()).length;
    await expect.poll(async () => (await positionsSeen(name)).length, { timeout: 20_000, interval: 50 }).toBe(total);
    await Promise.all([a.stop(), b.stop()]);
    const seen = await positionsSeen(name);
    expect(seen.every((r) => r.n === '1')).toBe(true);
    expect(await a.hasPassed(String(Math.max(...(await allPositions()).map(Number))))).toBe(true);
  });

  it('says when its live loop falls behind (a full batch) and when it has caught up, and tells each batch', async () => {
    const name = 'behind_probe';
    const calls: boolean[] = [];
    const told: boolean[] = [];
    const probe: ProjectionDefinition = { ...recorder(name), handle: async (trx, events, g, upTo, live) => {
      told.push(live!.behind);
      await recorder(name).handle(trx, events, g, upTo);
    } };
    const projector = new Projector(tdb.db, [probe], { batchSize: 3, pollMs: 20, onBehind: (b) => calls.push(b) });
    await projector.init();
    await projector.runUntilCaughtUp();
    told.length = 0;
    await Promise.all(Array.from({ length: 5 }, () => store.appendBatch([record()])));
    projector.start();
    const total = (await allPositions()).length;
    await expect.poll(async () => (await positionsSeen(name)).length, { timeout: 20_000, interval: 50 }).toBe(total);
    await expect.poll(() => calls.at(-1), { timeout: 10_000, interval: 20 }).toBe(false);
    await projector.stop();
    // 10 events in batches of 3: full ones first (behind), then one that is not (caught up), and no repeats.
    expect(calls).toEqual([true, false]);
    expect(told.slice(0, 3)).toEqual([true, true, true]);
    expect(told.at(-1)).toBe(false);
  });

  it('records a failing projection, keeps the others going, and recovers', async () => {
    let fail = true;
    const flaky: ProjectionDefinition = { ...recorder('flaky'), handle: async (trx, events, g) => {
      if (fail) throw new Error('boom on purpose');
      await recorder('flaky').handle(trx, events, g);
    } };
    const projector = new Projector(tdb.db, [flaky, recorder('healthy')], { pollMs: 20 });
    await projector.init();
    projector.start();
    await store.appendBatch([record()]);
    await expect.poll(async () => (await projector.status()).find((s) => s.name === 'flaky')?.state, { timeout: 10_000 }).toBe('failing');
    const status = (await projector.status()).find((s) => s.name === 'flaky')!;
    expect(status.lastError).toContain('boom on purpose');
    expect(status.failingPosition).not.toBeNull();
    await expect.poll(async () => (await projector.status()).find((s) => s.name === 'healthy')?.lagEvents, { timeout: 10_000 }).toBe(0);
    fail = false;
    await expect.poll(async () => (await projector.status()).find((s) => s.name === 'flaky')?.state, { timeout: 15_000 }).toBe('running');
    await projector.stop();
    const failures = await sql<{ n: string }>`SELECT count(*)::text AS n FROM projection_failures WHERE projection = 'flaky'`.execute(tdb.db);
    expect(Number(failures.rows[0]!.n)).toBeGreaterThan(0);
  });

  it("commits a live batch without waiting for its WAL flush, and only that transaction", async () => {
    // A derived batch lost in a crash is applied again from the store (its checkpoint is in the same transaction),
    // so its commit need not hold the WAL flush that the deliveries' synchronous commits queue behind.
    const seen: string[] = [];
    const probe: ProjectionDefinition = { ...recorder('sync_probe'), handle: async (trx, events, g) => {
      seen.push((await sql<{ s: string }>`SELECT current_setting('synchronous_commit') AS s`.execute(trx)).rows[0]!.s);
      await recorder('sync_probe').handle(trx, events, g);
    } };
    const projector = new Projector(tdb.db, [probe]);
    await projector.init();
    await store.appendBatch([record()]);
    await projector.runUntilCaughtUp();
    expect(seen.length).toBeGreaterThan(0);
    expect(new Set(seen)).toEqual(new Set(['off']));
    // SET LOCAL: a transaction that runs next on any pooled connection is synchronous again.
    const after = await Promise.all(Array.from({ length: 20 }, () => tdb.db.transaction().execute(async (trx) => (await sql<{ s: string }>`SELECT current_setting('synchronous_commit') AS s`.execute(trx)).rows[0]!.s)));
    expect(new Set(after)).toEqual(new Set(['on']));
  });

  it('with gatherMs, folds the commits of its window into one batch, and a read-your-writes waiter ends the window', async () => {
    const applied: number[] = [];
    // Window and poll far longer than the test: only the waiter can start the second batch.
    const projector = new Projector(tdb.db, [recorder('gathered')], { pollMs: 600_000, gatherMs: 600_000, onApplied: (_p, n) => applied.push(n) });
    await projector.init();
    const [first] = await store.appendBatch([record()]);
    projector.start();
    // The first wake-up after a quiet spell runs at once.
    await expect.poll(() => projector.hasPassed(first!.position!), { timeout: 10_000, interval: 20 }).toBe(true);
    let last = first!;
    for (let i = 0; i < 3; i++) {
      [last] = await store.appendBatch([record()]);
      projector.wake();
    }
    expect(await projector.waitFor(last.position!, 10_000)).toBe(true);
    await projector.stop();
    // The store so far (earlier tests' events too) at once, then the three records of the window (two events
    // each) together.
    expect(applied).toHaveLength(2);
    expect(applied[1]).toBe(6);
  });

  /** Until the projector's listener has completed its LISTEN (polling being a minute away, only NOTIFY can wake it). */
  const listening = () =>
    expect
      .poll(async () => {
        const r = await sql<{ n: string }>`
          SELECT count(*)::text AS n FROM pg_stat_activity
          WHERE datname = current_database() AND application_name = 'call-ledger-projector-listen' AND state = 'idle' AND query LIKE 'LISTEN %'`.execute(tdb.db);
        return Number(r.rows[0]!.n);
      }, { timeout: 10_000, interval: 20 })
      .toBe(1);

  it('is woken by NOTIFY from another process', async () => {
    const projector = new Projector(tdb.db, [recorder('notified')], { pollMs: 60_000, listenUrl: tdb.url });
    await projector.init();
    await projector.runUntilCaughtUp();
    projector.start();
    await listening();
    const [o] = await store.appendBatch([record()]);
    await expect.poll(() => projector.hasPassed(o!.position!), { timeout: 5_000, interval: 20 }).toBe(true);
    await projector.stop();
  });

  it('is not woken by the NOTIFY of a commit whose events it has read already (the echo of its own appends)', async () => {
    const projector = new Projector(tdb.db, [recorder('echo')], { pollMs: 60_000, listenUrl: tdb.url });
    await projector.init();
    await projector.runUntilCaughtUp();
    const wake = vi.spyOn(projector, 'wake');
    projector.start();
    await listening();
    const [o] = await store.appendBatch([record()]);
    await expect.poll(() => projector.hasPassed(o!.position!), { timeout: 5_000, interval: 20 }).toBe(true);
    const before = wake.mock.calls.length;
    // Notifications reach the listener in commit order: once the next append is projected (only its NOTIFY can have
    // woken the projector, polling is a minute away), the echo before it has been handled, and did not wake it.
    await sql`SELECT pg_notify('ledger_events', ${o!.position!})`.execute(tdb.db);
    const [next] = await store.appendBatch([record()]);
    await expect.poll(() => projector.hasPassed(next!.position!), { timeout: 5_000, interval: 20 }).toBe(true);
    expect(wake.mock.calls.length).toBe(before + 1);
    await projector.stop();
  });

  it('rebuilds side by side and switches atomically, the view answering throughout', async () => {
    const p = recorder('rebuilt');
    const projector = new Projector(tdb.db, [p]);
    await projector.init();
    await projector.runUntilCaughtUp();
    const before = (await positionsSeen('rebuilt')).length;
    expect(before).toBeGreaterThan(0);
    // Readers query the view for as long as the rebuild runs: every read must succeed and see the whole
    // projection (the old generation until the switch, the complete new one after), never a half-built table.
    const reads: number[] = [];
    let rebuilding = true;
    const reader = (async () => {
      while (rebuilding || reads.length < 3) reads.push((await positionsSeen('rebuilt')).length);
    })();
    await projector.rebuild('rebuilt');
    rebuilding = false;
    await reader;
    expect(reads.length).toBeGreaterThanOrEqual(3);
    expect(new Set(reads)).toEqual(new Set([before]));
    const after = await positionsSeen('rebuilt');
    expect(after.length).toBe(before);
    expect(after.every((r) => r.n === '1')).toBe(true);
    const status = (await projector.status()).find((s) => s.name === 'rebuilt')!;
    expect(status.generation).toBe(2);
    expect(status.state).toBe('running');
  });
});

describe('readAfter', () => {
  it('pages in numeric transaction order, also where the decimal text order differs (9 before 10)', async () => {
    const own = await createTestDatabase();
    try {
      await new EventStoreRepository(own.db).appendBatch([record()]);
      // Copies of a stored event under transaction ids whose text order ('10' < '9') is not their numeric order.
      for (const xid of ['10', '9']) {
        await sql`
          INSERT INTO events (transaction_id, event_id, stream_name, stream_version, type, data, metadata, receipt_id, occurred_at, received_at, prev_hash, hash, account_key)
          SELECT ${xid}::xid8, gen_random_uuid(), ${`copy-${xid}`}, 1, type, data, metadata, receipt_id, occurred_at, received_at, prev_hash, hash, account_key
          FROM events ORDER BY global_position LIMIT 1`.execute(own.db);
      }
      const seen: string[] = [];
      let cursor = START;
      for (;;) {
        const { events, next } = await readAfter(own.db, cursor, 1);
        if (events.length === 0) break;
        seen.push(events[0]!.position);
        cursor = next;
      }
      const order = await sql<{ p: string }>`SELECT global_position::text AS p FROM events ORDER BY transaction_id, global_position`.execute(own.db);
      expect(seen).toEqual(order.rows.map((r) => r.p));
    } finally {
      await own.drop();
    }
  });
});
