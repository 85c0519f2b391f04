import { createHash, randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase } from '@lib/db';
import { EventStoreRepository, type WebhookRecord } from '@lib/event-store';
import { newEvent, type LedgerEvent, type TranslatedEvent } from '@lib/ledger';
import { createTestDatabase, recordingProjection, type TestDatabase } from '@lib/testing';
import { callLegsProjection } from './call-legs.projection.js';
import type { ProjectionDefinition } from './projection.js';
import { Projector } from './projector.js';

let tdb: TestDatabase;
let store: EventStoreRepository;
beforeAll(async () => {
  tdb = await createTestDatabase(20);
  store = new EventStoreRepository(tdb.db);
});
afterAll(async () => tdb.drop());

const record = (events: TranslatedEvent[]): WebhookRecord => {
  const body = Buffer.from(randomUUID());
  return {
    receipt: {
      provider: 'jambonz', body, bodySha256: createHash('sha256').update(body).digest(), contentType: null, path: '', query: '',
      headers: {}, remoteAddr: null, receivedAt: new Date(), source: 'live', signatureStatus: 'unverified', signatureTimestamp: null,
    },
    events,
  };
};

const legs = async () =>
  (await sql<{ call_id: string; status: string; n: string }>`
    SELECT l.call_id, l.status, (SELECT count(*) FROM recordings r WHERE r.call_id = l.call_id)::text AS n FROM call_legs l ORDER BY call_id`.execute(tdb.db)).rows;
const head = async () => (await sql<{ p: string }>`SELECT max(global_position)::text AS p FROM events`.execute(tdb.db)).rows[0]!.p;
const statusOf = async (projector: Projector, name = 'call_legs') => (await projector.status()).find((s) => s.name === name)!;

describe('a poison event (one the projection cannot apply even alone)', () => {
  // Stored bypassing translation: a recording without a URL violates recordings.url NOT NULL (SQLSTATE 23502),
  // which no later code change to the translators can take out of the store.
  let poison: string;

  it('is parked and skipped by the live loop, which goes on; the leg keeps its other events', async () => {
    const s = (id: string) => `poison-${id}`;
    await store.appendBatch([record([
      newEvent('CallInitiated', s('A'), { direction: 'inbound', from: '+1', to: '+2' }),
      newEvent('CallAnswered', s('A'), {}),
      newEvent('CallCompleted', s('A'), { outcome: 'completed', durationSec: 10 }),
    ])]);
    const [bad] = await store.appendBatch([record([
      newEvent('CallInitiated', s('B'), { direction: 'inbound', from: '+1', to: '+3' }),
      newEvent('RecordingAvailable', s('B'), { url: null, scope: 'call' } as never),
    ])]);
    poison = bad!.position!;
    await store.appendBatch([record([newEvent('CallCompleted', s('B'), { outcome: 'busy' })])]);
    await store.appendBatch([record([newEvent('CallInitiated', s('C'), { direction: 'inbound', from: '+1', to: '+4' })])]);

    // One event a batch: the poison's innocent predecessor on its leg is a batch of its own, and must not be blamed.
    const projector = new Projector(tdb.db, [callLegsProjection], { pollMs: 20, batchSize: 1 });
    await projector.init();
    projector.start();
    try {
      expect(await projector.waitFor(await head(), 20_000)).toBe(true);
      const st = await statusOf(projector);
      expect(st).toMatchObject({ state: 'running', lagEvents: 0, parkedEvents: 1 });
      expect(st.checkpoint.position).toBe(await head());
      expect(st.parked).toEqual([
        expect.objectContaining({ position: poison, type: 'RecordingAvailable', stream: `callLeg-jambonz:${s('B')}`, error: expect.stringContaining('null value') }),
      ]);
      expect(await legs()).toEqual([
        { call_id: s('A'), status: 'completed', n: '0' },
        { call_id: s('B'), status: 'busy', n: '0' },
        { call_id: s('C'), status: 'initiated', n: '0' },
      ]);
      // Parked, not failing: the failure log is for what will be retried.
      const failures = await sql<{ n: string }>`SELECT count(*)::text AS n FROM projection_failures`.execute(tdb.db);
      expect(failures.rows[0]!.n).toBe('0');
      // A later call is projected as usual.
      const [later] = await store.appendBatch([record([newEvent('CallInitiated', s('D'), { direction: 'inbound', from: '+1', to: '+5' })])]);
      expect(await projector.waitFor(later!.position!, 20_000)).toBe(true);
      expect((await legs()).map((l) => l.call_id)).toContain(s('D'));
    } finally {
      await projector.stop();
    }
  });

  it('is parked in a rebuild too, by the bulk load and by the commit-order replay', async () => {
    const before = await legs();
    const projector = new Projector(tdb.db, [callLegsProjection]);
    await projector.rebuild('call_legs');
    let st = await statusOf(projector);
    expect(st).toMatchObject({ generation: 2, state: 'running', parkedEvents: 1, lagEvents: 0 });
    expect(st.parked.map((p) => p.position)).toEqual([poison]);
    expect(await legs()).toEqual(before);

    // Without the bulk path every event goes through the replay that a rebuild ends with.
    const replayOnly = new Projector(tdb.db, [{ ...callLegsProjection, bulkLoad: undefined }], { batchSize: 2 });
    await replayOnly.rebuild('call_legs');
    st = await statusOf(replayOnly);
    expect(st).toMatchObject({ generation: 3, state: 'running', parkedEvents: 1, lagEvents: 0 });
    expect(await legs()).toEqual(before);
    // The switch-over drops the old generations' parked rows with their tables.
    const rows = await sql<{ generation: number }>`SELECT generation FROM projection_parked`.execute(tdb.db);
    expect(rows.rows).toEqual([{ generation: 3 }]);
  });
});

describe('events written around the append path', () => {
  it('null data or metadata, or a leg id that is not text, do not stop the projection', async () => {
    const [ok] = await store.appendBatch([record([newEvent('CallInitiated', 'poison-shape-ok', { direction: 'inbound', from: '+1', to: '+2' })])]);
    for (const [i, data, metadata] of [
      [1, 'null', '{"provider":"jambonz","legId":"poison-shape-1"}'],
      [2, '{"outcome":"completed","durationSec":"x"}', 'null'],
      [3, '{"childLegId":{"not":"text"},"outcome":"busy"}', '{"provider":"jambonz","legId":12345}'],
    ] as const) {
      await sql`
        INSERT INTO events (event_id, stream_name, stream_version, type, data, metadata, receipt_id, received_at, hash, account_key)
        SELECT gen_random_uuid(), ${`callLeg-jambonz:poison-shape-${i}`}, 1, ${i === 3 ? 'DialCompleted' : 'CallCompleted'}, ${data}::jsonb,
          ${metadata}::jsonb, receipt_id, now(), '\\x00', account_key
        FROM events WHERE global_position = ${ok!.position!}::bigint`.execute(tdb.db);
    }
    const [later] = await store.appendBatch([record([newEvent('CallInitiated', 'poison-shape-later', { direction: 'inbound', from: '+1', to: '+3' })])]);
    const projector = new Projector(tdb.db, [callLegsProjection]);
    await projector.init();
    await projector.runUntilCaughtUp();
    expect(await projector.hasPassed(later!.position!)).toBe(true);
    expect(await statusOf(projector)).toMatchObject({ state: 'running', lagEvents: 0 });
    expect((await legs()).map((l) => l.call_id)).toEqual(expect.arrayContaining(['poison-shape-ok', 'poison-shape-later', 'poison-shape-1']));
  });
});

const recorder = recordingProjection;

describe('transient errors', () => {
  it('are retried, never parked: serialization failure, deadlock, cancel, connection loss', async () => {
    const errors = [
      Object.assign(new Error('could not serialize access'), { code: '40001' }),
      Object.assign(new Error('deadlock detected'), { code: '40P01' }),
      Object.assign(new Error('canceling statement due to user request'), { code: '57014' }),
      new Error('Connection terminated unexpectedly'),
      Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }),
    ];
    let calls = 0;
    const projector = new Projector(tdb.db, [recorder('transient', () => errors[calls++])]);
    await projector.init();
    for (const err of errors) await expect(projector.runOnce(projector.projections[0]!)).rejects.toBe(err);
    expect(await projector.runOnce(projector.projections[0]!)).toBeGreaterThan(0);
    const parked = await sql<{ n: string }>`SELECT count(*)::text AS n FROM projection_parked WHERE projection = 'transient'`.execute(tdb.db);
    expect(parked.rows[0]!.n).toBe('0');
  });

  it('a data error (SQLSTATE class 22) is parked: only the culprit, found by halving the batch', async () => {
    const all = (await sql<{ p: string }>`SELECT global_position::text AS p FROM events ORDER BY transaction_id, global_position`.execute(tdb.db)).rows.map((r) => r.p);
    const culprit = all[Math.floor(all.length / 2)]!;
    const projector = new Projector(tdb.db, [
      recorder('halving', (events) => (events.some((e) => e.position === culprit) ? Object.assign(new Error('integer out of range'), { code: '22003' }) : undefined)),
    ]);
    await projector.init();
    await projector.runUntilCaughtUp();
    const seen = (await sql<{ p: string }>`SELECT position::text AS p FROM halving ORDER BY position`.execute(tdb.db)).rows.map((r) => r.p);
    expect(seen).toEqual(all.filter((p) => p !== culprit).sort((a, b) => Number(a) - Number(b)));
    expect((await statusOf(projector, 'halving')).parked.map((p) => p.position)).toEqual([culprit]);
  });
});

describe('rebuild lock', () => {
  it('two instances on separate pools: the second rebuild waits for the first, then skips; one generation is built', async () => {
    const other = createDatabase(tdb.url, 5);
    try {
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let reachedGate!: () => void;
      const atGate = new Promise<void>((r) => (reachedGate = r));
      const a = new Projector(tdb.db, [recorder('locked', async (_e, g) => {
        if (g === 2) {
          reachedGate();
          await gate;
        }
      })]);
      let secondWrote = 0;
      const bLog: string[] = [];
      const b = new Projector(other.db, [recorder('locked', (_e, g) => void (g > 1 && secondWrote++))], {
        rebuildLockPollMs: 10,
        log: (_l, m) => bLog.push(m),
      });
      await a.init();
      await a.runUntilCaughtUp();
      await b.init();
      const first = a.rebuild('locked');
      await atGate;
      const second = b.rebuild('locked');
      await expect.poll(() => bLog.some((m) => m.includes('waiting for its rebuild lock')), { timeout: 10_000, interval: 10 }).toBe(true);
      release();
      await Promise.all([first, second]);
      expect(secondWrote).toBe(0);
      expect(bLog.some((m) => m.includes('skipping'))).toBe(true);
      const st = await statusOf(a, 'locked');
      expect(st).toMatchObject({ generation: 2, state: 'running', lagEvents: 0 });
      const seen = await sql<{ n: string; d: string }>`SELECT count(*)::text AS n, count(DISTINCT position)::text AS d FROM locked`.execute(tdb.db);
      expect(seen.rows[0]!.n).toBe(seen.rows[0]!.d);
      expect(Number(seen.rows[0]!.n)).toBe(Number(await sql<{ n: string }>`SELECT count(*)::text AS n FROM events`.execute(tdb.db).then((r) => r.rows[0]!.n)));
      // A later request rebuilds again (nothing ran while it waited).
      await b.rebuild('locked');
      expect((await statusOf(b, 'locked')).generation).toBe(3);
    } finally {
      await other.db.destroy();
    }
  });

  it('after a version bump two instances start the rebuild at once: one builds the new generation, the other waits and skips', async () => {
    const other = createDatabase(tdb.url, 5);
    try {
      const old = new Projector(tdb.db, [recorder('bumped')]);
      await old.init();
      await old.runUntilCaughtUp();
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let reachedGate!: () => void;
      const atGate = new Promise<void>((r) => (reachedGate = r));
      const v2 = (fail: (events: readonly LedgerEvent[], g: number) => unknown): ProjectionDefinition => ({ ...recorder('bumped', fail), version: 2 });
      const a = new Projector(tdb.db, [v2(async (_e, g) => {
        if (g === 2) {
          reachedGate();
          await gate;
        }
      })]);
      let secondWrote = 0;
      const bLog: string[] = [];
      const b = new Projector(other.db, [v2((_e, g) => void (g > 1 && secondWrote++))], { rebuildLockPollMs: 10, log: (_l, m) => bLog.push(m) });
      await a.init(); // starts the rebuild in the background
      await atGate;
      await b.init();
      await expect.poll(() => bLog.some((m) => m.includes('waiting for its rebuild lock')), { timeout: 10_000, interval: 10 }).toBe(true);
      release();
      await expect.poll(async () => (await statusOf(a, 'bumped')).version, { timeout: 20_000, interval: 20 }).toBe(2);
      await expect.poll(() => bLog.some((m) => m.includes('skipping')), { timeout: 10_000, interval: 10 }).toBe(true);
      await Promise.all([a.stop(), b.stop()]);
      expect(secondWrote).toBe(0);
      expect(await statusOf(a, 'bumped')).toMatchObject({ generation: 2, version: 2, state: 'running' });
    } finally {
      await other.db.destroy();
    }
  });
});
