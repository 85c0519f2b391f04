import { randomUUID } from 'node:crypto';
import { sql } from 'kysely';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEvent } from '@lib/ledger';
import { createTestDatabase, jambonzRecord, type TestDatabase } from '@lib/testing';
import { ERASURES_STREAM, ErasureRepository, type ArchiveErasure } from './erasure.repository.js';
import { EventStoreRepository } from './event-store.repository.js';
import { computeEventHash, verifyStreamChain } from './hash-chain.js';
import { ERASED, sealsOf } from './personal-seals.js';
import { RetentionRepository } from './retention.repository.js';

let tdb: TestDatabase;
let store: EventStoreRepository;
let erasures: ErasureRepository;

beforeAll(async () => {
  tdb = await createTestDatabase();
  store = new EventStoreRepository(tdb.db);
  erasures = new ErasureRepository(tdb.db);
});
afterAll(async () => tdb.drop());

const party = (from: string, to: string) => ({ direction: 'inbound' as const, from, to });
/** A call from `from` to `to`: its first delivery names both in its data and its party, the body carries them too. */
const call = (legId: string, from: string, to: string) => [
  jambonzRecord(legId, {
    body: JSON.stringify({ call_sid: legId, from, to, call_status: 'ringing' }),
    events: [newEvent('CallInitiated', legId, { direction: 'inbound', from, to }, { party: party(from, to) }), newEvent('CallRinging', legId, {}, { party: party(from, to) })],
  }),
  jambonzRecord(legId, { events: [newEvent('DtmfReceived', legId, { digits: '4321', source: 'gather' }, { party: party(from, to) })] }),
];

const eventsOf = (stream: string) =>
  tdb.db.selectFrom('events').select(['global_position', 'type', 'data', 'metadata', 'receipt_id']).where('stream_name', '=', stream).orderBy('global_position').execute();
const verifyAll = async (streams: string[]) => {
  const heads = await store.readStreamHeads(streams);
  const links = await store.readChainLinks({ streamNames: streams });
  return streams.map((s) => verifyStreamChain(links.filter((l) => l.streamName === s), heads.get(s))).filter((b) => b !== null);
};
const request = (subject: Parameters<ErasureRepository['erase']>[0]['subject']) => ({
  erasureId: randomUUID(), subject, reason: 'data subject request #1', keyName: 'ops-admin', requestedAt: new Date(),
});

describe('erasure by subject (ledger_erase)', () => {
  it('erases a number everywhere it is sealed and every body that carries it; every chain still verifies', async () => {
    await store.appendBatch([...call('leg-e1', '+15550001111', '+15559990000'), ...call('leg-e2', '+15552223333', '+15559990000')]);
    const outcome = await erasures.erase(request({ kind: 'number', number: '+15550001111' }));
    expect(outcome).toMatchObject({ streams: ['callLeg-jambonz:leg-e1'], receipts: 2, notErasable: 0 });
    // data.from and the party's from on CallInitiated, the party's from on CallRinging and on DtmfReceived
    expect(outcome.fields).toBe(4);

    const [init, ringing, dtmf, marker] = await eventsOf('callLeg-jambonz:leg-e1');
    expect(init!.data).toEqual({ direction: 'inbound', from: ERASED, to: '+15559990000' });
    expect((init!.metadata as { party: unknown }).party).toEqual(party(ERASED, '+15559990000'));
    expect(sealsOf(init!.metadata)['data.from']).toMatch(/^c:[0-9a-f]{64}$/);
    expect(sealsOf(init!.metadata)['data.to']).toMatch(/^n:/);
    expect((ringing!.metadata as { party: unknown }).party).toEqual(party(ERASED, '+15559990000'));
    // The DTMF delivery's party names the number too: erased there, the digits kept (they are not the subject).
    expect(dtmf!.data).toEqual({ digits: '4321', source: 'gather' });
    expect(marker).toMatchObject({ type: 'PersonalDataErased', data: { erasureId: outcome.erasureId, fields: 4 } });

    const receipt = await tdb.db.selectFrom('webhook_receipts').select(['body', 'erased_at']).where('id', '=', init!.receipt_id).executeTakeFirstOrThrow();
    expect(receipt.body.length).toBe(0);
    expect(receipt.erased_at).not.toBeNull();
    // The other call keeps its number.
    const [other] = await eventsOf('callLeg-jambonz:leg-e2');
    expect(other!.data).toMatchObject({ from: '+15552223333' });

    expect(await verifyAll(['callLeg-jambonz:leg-e1', 'callLeg-jambonz:leg-e2', ERASURES_STREAM])).toEqual([]);
    const [summary] = await eventsOf(ERASURES_STREAM);
    expect(summary).toMatchObject({ type: 'SubjectErased', data: { subject: 'number', hint: '11', reason: 'data subject request #1', keyName: 'ops-admin' } });
    expect(JSON.stringify(summary)).not.toContain('15550001111');
  });

  it('erases a leg: every sealed value of its streams, the bodies of its receipts', async () => {
    await store.appendBatch(call('leg-e3', '+15554445555', 'sip:alice@example.com'));
    const outcome = await erasures.erase(request({ kind: 'leg', legIds: ['leg-e3'] }));
    expect(outcome.receipts).toBe(2);
    const [init, , dtmf] = await eventsOf('callLeg-jambonz:leg-e3');
    expect(init!.data).toEqual({ direction: 'inbound', from: ERASED, to: ERASED });
    expect(dtmf!.data).toEqual({ digits: ERASED, source: 'gather' });
    expect(await verifyAll(['callLeg-jambonz:leg-e3'])).toEqual([]);
  });

  it('is the only way to change a stored row, and it changes only the erasable columns', async () => {
    await store.appendBatch(call('leg-e4', '+15556667777', '+15559990000'));
    const [init] = await eventsOf('callLeg-jambonz:leg-e4');
    const owner = tdb.db;
    // The owner itself: no UPDATE outside ledger_erase, no DELETE at all.
    await expect(sql`UPDATE events SET data = '{}' WHERE global_position = ${init!.global_position}`.execute(owner)).rejects.toThrow(/append-only/);
    await expect(sql`DELETE FROM webhook_receipts WHERE id = ${init!.receipt_id}`.execute(owner)).rejects.toThrow(/append-only/);
    // Even with the flag ledger_erase sets, a column that is not erasable stays as it is.
    await expect(
      owner.transaction().execute(async (trx) => {
        await sql`SELECT set_config('ledger.erasing', 'on', true)`.execute(trx);
        await sql`UPDATE events SET type = 'CallCompleted' WHERE global_position = ${init!.global_position}`.execute(trx);
      }),
    ).rejects.toThrow(/may change only/);
    // ledger_erase refuses what is not a sealed personal field, and a commitment that is not a sha256.
    const erase = (path: string, commit: string) =>
      sql`SELECT * FROM ledger_erase(${[String(init!.global_position)]}::bigint[], ${[path]}::text[], ${[commit]}::text[], '{}'::bigint[])`.execute(owner);
    await expect(erase('data.direction', 'a'.repeat(64))).rejects.toThrow(/not a personal field/);
    await expect(erase('data.from', 'xyz')).rejects.toThrow(/not a sha256/);
    await expect(erase('data.text', 'a'.repeat(64))).rejects.toThrow(/holds no kept value/);

    // The service's role: no UPDATE, no DELETE on the store; EXECUTE on ledger_erase; the projector has neither.
    const app = new pg.Client({ connectionString: tdb.appUrl });
    const projector = new pg.Client({ connectionString: tdb.projectorUrl });
    await app.connect();
    await projector.connect();
    try {
      const code = (c: pg.Client, q: string) => c.query(q).then(() => 'ok', (e: { code?: string }) => e.code);
      expect(await code(app, `UPDATE events SET data = '{}' WHERE global_position = ${init!.global_position}`)).toBe('42501');
      expect(await code(app, `BEGIN; SET LOCAL ledger.erasing = 'on'; UPDATE webhook_receipts SET body = '' WHERE id = ${init!.receipt_id}`)).toBe('42501');
      await app.query('ROLLBACK');
      expect(await code(projector, `SELECT * FROM ledger_erase('{}', '{}', '{}', '{${init!.receipt_id}}')`)).toBe('42501');
      // The app may call it (here with nothing to erase but the body of one receipt).
      expect(await code(app, `SELECT * FROM ledger_erase('{}', '{}', '{}', '{${init!.receipt_id}}')`)).toBe('ok');
    } finally {
      await app.end();
      await projector.end();
    }
    // A body dropped by calling ledger_erase directly, with no record of it in the chain, is reported.
    expect(await verifyAll(['callLeg-jambonz:leg-e4'])).toEqual([expect.objectContaining({ position: String(init!.global_position), reason: expect.stringContaining('no PersonalDataErased') })]);
  });

  it('rolls everything back when a commitment is wrong: the chain check inside the transaction refuses it', async () => {
    await store.appendBatch(call('leg-e5', '+15558889999', '+15559990000'));
    const [init] = await eventsOf('callLeg-jambonz:leg-e5');
    // A forged erasure (right shape, wrong commitment) goes through ledger_erase but breaks the chain: visible.
    await sql`SELECT * FROM ledger_erase(${[String(init!.global_position)]}::bigint[], ${['data.from']}::text[], ${['b'.repeat(64)]}::text[], '{}'::bigint[])`.execute(tdb.db);
    expect(await verifyAll(['callLeg-jambonz:leg-e5'])).toEqual([expect.objectContaining({ reason: expect.stringContaining('does not match its hash') })]);
  });

  it('keeps values hashed in clear by rules 1 and 2, and says so', async () => {
    await store.appendBatch(call('leg-e6', '+15551112222', '+15559990000'));
    // Rewrite the stream as rule 2 wrote it (no seals, values hashed in clear), behind the triggers.
    const stream = 'callLeg-jambonz:leg-e6';
    await sql`ALTER TABLE events DISABLE TRIGGER USER`.execute(tdb.db);
    let prev: Buffer | null = null;
    for (const link of await store.readChainLinks({ streamNames: [stream] })) {
      const { seals: _s, ...metadata } = link.metadata as Record<string, unknown>;
      const hash = computeEventHash(prev, { ...link, chainVersion: 2, metadata });
      await sql`UPDATE events SET chain_version = 2, metadata = ${JSON.stringify(metadata)}::jsonb, prev_hash = ${prev}, hash = ${hash}
        WHERE global_position = ${link.position}`.execute(tdb.db);
      prev = hash;
    }
    await sql`ALTER TABLE events ENABLE TRIGGER USER`.execute(tdb.db);
    await sql`UPDATE streams SET last_hash = ${prev} WHERE stream_name = ${stream}`.execute(tdb.db);
    expect(await verifyAll([stream])).toEqual([]);
    const outcome = await erasures.erase(request({ kind: 'number', number: '15551112222' }));
    expect(outcome).toMatchObject({ fields: 0, notErasable: 3, receipts: 2 });
    // The bodies went (every rule hashes a body as its sha256), the values and the query stayed; the chain holds.
    const [init] = await eventsOf(stream);
    expect(init!.data).toMatchObject({ from: '+15551112222' });
    expect(await verifyAll([stream])).toEqual([]);
  });
});

describe('erasure racing with ingest', () => {
  const NUMBER = '+15553334444';
  const delivery = (legId: string, n: number) =>
    jambonzRecord(legId, {
      body: JSON.stringify({ call_sid: legId, from: NUMBER, n }),
      events: [newEvent('CallRinging', legId, { sipStatus: 180 }, { party: party(NUMBER, '+15559990000') })],
    });
  /** No archived month; `beforeCommit` runs where the archive would switch its months (behind the fence). */
  const noArchive = (beforeCommit: () => Promise<void>): ArchiveErasure => ({
    prepare: async () => ({ months: 0, events: 0, fields: 0, receipts: 0, notErasable: 0, changed: new Map() }),
    commit: beforeCommit,
    abort: async () => undefined,
  });

  it('erases a delivery that committed after its first pass had read the store (the second pass reads what committed since)', async () => {
    await store.appendBatch([delivery('leg-r1', 1)]);
    // Between the first pass and the fence, another connection stores a delivery of the number.
    const outcome = await erasures.erase(request({ kind: 'number', number: NUMBER }), undefined, {
      afterFirstPass: async () => void (await store.appendBatch([delivery('leg-r2', 2)])),
    });
    expect(outcome.streams).toEqual(['callLeg-jambonz:leg-r1', 'callLeg-jambonz:leg-r2']);
    expect(outcome.receipts).toBe(2);
    const [late] = await eventsOf('callLeg-jambonz:leg-r2');
    expect((late!.metadata as { party: { from: string } }).party.from).toBe(ERASED);
    const body = await tdb.db.selectFrom('webhook_receipts').select(['body']).where('id', '=', late!.receipt_id).executeTakeFirstOrThrow();
    expect(body.body.length).toBe(0);
    expect(await verifyAll(['callLeg-jambonz:leg-r1', 'callLeg-jambonz:leg-r2', ERASURES_STREAM])).toEqual([]);
  });

  it('holds appends from its fence to its commit: a delivery stored then waits, and is kept as a new one', async () => {
    await store.appendBatch([delivery('leg-r3', 3)]);
    let waiting: Promise<unknown> | null = null;
    const outcome = await erasures.erase(
      request({ kind: 'number', number: NUMBER }),
      noArchive(
        async () => {
          // After the fence: this append blocks on the table lock until the erasure commits.
          waiting = store.appendBatch([delivery('leg-r3', 4)]);
          for (;;) {
            const r = await sql<{ n: number }>`
              SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE '%ledger_append%'`.execute(tdb.db);
            if (r.rows[0]!.n > 0) break;
          }
        },
      ),
    );
    await waiting;
    const events = await eventsOf('callLeg-jambonz:leg-r3');
    expect(events.map((e) => e.type)).toEqual(['CallRinging', 'PersonalDataErased', 'CallRinging']);
    expect((events[0]!.metadata as { party: { from: string } }).party.from).toBe(ERASED);
    expect((events[2]!.metadata as { party: { from: string } }).party.from).toBe(NUMBER);
    expect(events[1]!.data).toMatchObject({ erasureId: outcome.erasureId });
    expect(await verifyAll(['callLeg-jambonz:leg-r3'])).toEqual([]);
  });

  it('under concurrent appends of the number to one leg: every event before the erasure\'s record is erased, every one after kept', async () => {
    const stream = 'callLeg-jambonz:leg-r4';
    await store.appendBatch([delivery('leg-r4', 100)]);
    const appends = Array.from({ length: 40 }, (_, i) => store.appendBatch([delivery('leg-r4', 101 + i)]));
    const outcome = await erasures.erase(request({ kind: 'number', number: NUMBER }));
    await Promise.all(appends);
    const events = await tdb.db
      .selectFrom('events')
      .select(['stream_version', 'type', 'data', 'metadata'])
      .where('stream_name', '=', stream)
      .orderBy('stream_version')
      .execute();
    const marker = events.findIndex((e) => e.type === 'PersonalDataErased' && (e.data as { erasureId: string }).erasureId === outcome.erasureId);
    expect(marker).toBeGreaterThan(0);
    const from = (e: (typeof events)[number]) => (e.metadata as { party: { from: string } }).party.from;
    expect(events.slice(0, marker).map(from)).toEqual(events.slice(0, marker).map(() => ERASED));
    expect(events.slice(marker + 1).map(from)).toEqual(events.slice(marker + 1).map(() => NUMBER));
    expect(events).toHaveLength(42);
    expect(await verifyAll([stream])).toEqual([]);
  });
});

describe('erasure and retention', () => {
  it('wait for each other: an erasure waits while retention holds a month (detach, archive, drop)', async () => {
    await store.appendBatch(call('leg-h1', '+15557778888', '+15559990000'));
    const retention = new RetentionRepository(tdb.db);
    let erasure: Promise<unknown> | null = null;
    let finishedInside = false;
    await retention.withErasuresHeld(async () => {
      erasure = erasures.erase(request({ kind: 'number', number: '+15557778888' })).then(() => (finishedInside = true));
      // The erasure is seen waiting on the advisory lock before retention lets go.
      for (;;) {
        const r = await sql<{ n: number }>`
          SELECT count(*)::int AS n FROM pg_locks WHERE locktype = 'advisory' AND NOT granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`.execute(tdb.db);
        if (r.rows[0]!.n > 0) break;
      }
    });
    expect(finishedInside).toBe(false);
    await erasure;
    const [init] = await eventsOf('callLeg-jambonz:leg-h1');
    expect(init!.data).toMatchObject({ from: ERASED });
  });
});
