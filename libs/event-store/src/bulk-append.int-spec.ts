import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase, poolOf, type DatabaseHandle } from '@lib/db';
import { callLegsProjection, Projector } from '@lib/projections';
import { ProviderRegistry } from '@lib/providers';
import { simulate } from '@lib/simulator';
import { createTestDatabase, type TestDatabase } from '@lib/testing';
import { buildWebhookRecord } from '../../../apps/ledger/src/webhooks/webhook-record.factory.js';
import { BulkAppendRepository } from './bulk-append.repository.js';
import { EventStoreRepository } from './event-store.repository.js';
import { retryTransient } from './group-commit-writer.js';
import { verifyStreamChain } from './hash-chain.js';
import { StagedChunk } from './staged-rows.js';
import type { WebhookRecord } from './webhook-record.js';

/**
 * The bulk path (COPY into staging, ledger_append_staged) against the live path (appendBatch, ledger_append):
 * the same records must give the same receipts, the same events byte for byte (hash included), the same stream
 * heads and the same legs, with the dedupe of the live path. The bulk side runs as ledger_app, as the service does.
 */
const providers = new ProviderRegistry({ freeclimb: [], jambonz: [], twilio: [], restcomm: [] }, undefined);

/** Simulated history of every provider (retries included), translated as the import translates it. */
const history = (seed: string, calls: number): WebhookRecord[] =>
  simulate({ seed, calls, provider: 'mixed', baseTimeMs: Date.UTC(2026, 1, 1), mode: 'import', days: 3, rate: 5, maxTalkSec: 300 }).deliveries.map((d) =>
    buildWebhookRecord(
      {
        provider: d.provider,
        rawBody: Buffer.from(d.body),
        contentType: d.contentType,
        path: d.path.replace(/^\/+/, ''),
        query: d.query,
        headers: { 'content-type': d.contentType },
        remoteAddr: null,
        receivedAt: new Date(d.receivedAtMs),
        signature: { status: 'not-checked', timestamp: null },
        source: 'import',
      },
      providers,
    ),
  );

/** Appends through the bulk path in chunks of `size`, counting as the import handler counts. */
const bulkAppend = async (bulk: BulkAppendRepository, records: readonly WebhookRecord[], size: number) => {
  const total = { imported: 0, duplicates: 0 };
  for (let i = 0; i < records.length; i += size) {
    const chunk = new StagedChunk<number>();
    for (const r of records.slice(i, i + size)) if (!chunk.add(r, 0)) total.duplicates += 1;
    const out = await bulk.appendChunk(chunk);
    total.imported += out.imported;
    total.duplicates += out.duplicates;
  }
  return total;
};

const liveAppend = async (store: EventStoreRepository, records: readonly WebhookRecord[], size: number) => {
  const total = { imported: 0, duplicates: 0 };
  for (let i = 0; i < records.length; i += size) {
    for (const o of await store.appendBatch(records.slice(i, i + size))) total[o.duplicate ? 'duplicates' : 'imported'] += 1;
  }
  return total;
};

/** Every event as stored, minus what depends on when and in which transaction it was written. */
/**
 * Every event as stored, but for the nonces of its seals (chain rule 3: random per append, so two stores of the
 * same deliveries differ there and in the hashes that cover them): which fields are sealed is compared, and
 * each store's chains are verified (chainBreaks).
 */
const eventsOf = async (tdb: TestDatabase) =>
  (
    await sql<Record<string, unknown>>`
      SELECT e.event_id, e.stream_name, e.stream_version, e.type, e.schema_version, e.data, e.metadata - 'seals' AS metadata,
        ARRAY(SELECT jsonb_object_keys(coalesce(e.metadata->'seals', '{}')) ORDER BY 1) AS sealed, e.occurred_at, e.received_at,
        e.chain_version, encode(r.body_sha256, 'hex') AS receipt
      FROM events e JOIN webhook_receipts r ON r.id = e.receipt_id ORDER BY e.stream_name, e.stream_version`.execute(tdb.db)
  ).rows;
const receiptsOf = async (tdb: TestDatabase) =>
  (
    await sql<Record<string, unknown>>`
      SELECT provider, encode(body_sha256, 'hex') AS sha, encode(dedupe_key, 'hex') AS dedupe_key, encode(body, 'hex') AS body, content_type, path, query,
        headers, remote_addr, received_at, source, signature_status, signature_timestamp
      FROM webhook_receipts ORDER BY provider, body_sha256`.execute(tdb.db)
  ).rows;
const headsOf = async (tdb: TestDatabase) =>
  (await sql<Record<string, unknown>>`SELECT stream_name, version FROM streams ORDER BY stream_name`.execute(tdb.db)).rows;
/** The legs a projection builds, minus the positions of the events they came from (a store's own numbering). */
const legsOf = async (tdb: TestDatabase) => {
  const projector = new Projector(tdb.db, [callLegsProjection]);
  await projector.init();
  await projector.runUntilCaughtUp();
  await projector.stop();
  const rows = (await sql<Record<string, unknown>>`SELECT * FROM call_legs ORDER BY provider, call_id`.execute(tdb.db)).rows;
  return rows.map((r) => Object.fromEntries(Object.entries(r).filter(([k]) => !k.includes('position'))));
};
const chainBreaks = async (tdb: TestDatabase) => {
  const store = new EventStoreRepository(tdb.db);
  const links = await store.readChainLinks({});
  const heads = await store.readStreamHeads([...new Set(links.map((l) => l.streamName))]);
  const byStream = new Map<string, typeof links>();
  for (const l of links) byStream.set(l.streamName, [...(byStream.get(l.streamName) ?? []), l]);
  expect(byStream.size).toBe(heads.size);
  return [...byStream].map(([name, ls]) => verifyStreamChain(ls, heads.get(name))).filter((b) => b !== null);
};
const stagedLeft = async (tdb: TestDatabase) =>
  Number((await sql<{ n: string }>`SELECT (SELECT count(*) FROM import_staged_receipts) + (SELECT count(*) FROM import_staged_events) AS n`.execute(tdb.db)).rows[0]!.n);

let live: TestDatabase;
let bulkDb: TestDatabase;
let asApp: DatabaseHandle;
let bulk: BulkAppendRepository;

beforeAll(async () => {
  [live, bulkDb] = await Promise.all([createTestDatabase(4), createTestDatabase(4)]);
  asApp = createDatabase(bulkDb.appUrl, 2);
  bulk = new BulkAppendRepository(poolOf(asApp.db)!);
});
afterAll(async () => {
  await asApp.db.destroy();
  await Promise.all([live.drop(), bulkDb.drop()]);
});

describe('BulkAppendRepository (COPY into staging, ledger_append_staged)', () => {
  it('stores what the live path stores: same receipts, same events (but for the seal nonces) and stream versions, chains that verify, same legs', async () => {
    const records = history('bulk-equivalence', 120);
    const retries = records.length - new Set(records.map((r) => `${r.receipt.provider}:${r.receipt.bodySha256.toString('hex')}`)).size;
    expect(retries).toBeGreaterThan(0);

    // Different cuts on each side: a retry lands in the chunk of its original on one side and not on the other.
    const viaLive = await liveAppend(new EventStoreRepository(live.db), records, 97);
    const viaBulk = await bulkAppend(bulk, records, 250);
    expect(viaBulk).toEqual(viaLive);
    expect(viaBulk.duplicates).toBe(retries);

    const events = await eventsOf(bulkDb);
    expect(events.length).toBeGreaterThan(records.length);
    expect(events).toEqual(await eventsOf(live));
    expect(await receiptsOf(bulkDb)).toEqual(await receiptsOf(live));
    expect(await headsOf(bulkDb)).toEqual(await headsOf(live));
    expect(await chainBreaks(bulkDb)).toEqual([]);
    expect(await stagedLeft(bulkDb)).toBe(0);

    const legs = await legsOf(bulkDb);
    expect(legs.length).toBeGreaterThan(100);
    expect(legs).toEqual(await legsOf(live));
  });

  it('dedupes against deliveries of the live path both ways, form bodies by their signed content, and continues their streams', async () => {
    const records = history('bulk-dedupe', 30);
    const store = new EventStoreRepository(bulkDb.db);
    // Some arrived live first; the import then meets them as duplicates and appends after them on their streams.
    const liveFirst = records.filter((_, i) => i % 3 === 0);
    await liveAppend(store, liveFirst, 50);
    const out = await bulkAppend(bulk, records, 40);
    const distinct = new Set(records.map((r) => r.receipt.bodySha256.toString('hex'))).size;
    const liveDistinct = new Set(liveFirst.map((r) => r.receipt.bodySha256.toString('hex'))).size;
    expect(out).toEqual({ imported: distinct - liveDistinct, duplicates: records.length - (distinct - liveDistinct) });

    // Afterwards the live path finds the imported ones; a form body reordered is the same signed delivery.
    const form = records.find((r) => r.receipt.provider === 'twilio' || r.receipt.provider === 'restcomm')!;
    const reordered = Buffer.from(new URLSearchParams([...new URLSearchParams(form.receipt.body.toString())].reverse()).toString());
    expect(reordered.equals(form.receipt.body)).toBe(false);
    const variant: WebhookRecord = { ...form, receipt: { ...form.receipt, body: reordered, bodySha256: createHash('sha256').update(reordered).digest() } };
    const again = await store.appendBatch([records[1]!, variant]);
    expect(again.map((o) => o.duplicate)).toEqual([true, true]);
    expect(await bulkAppend(bulk, [variant], 10)).toEqual({ imported: 0, duplicates: 1 });

    expect(await chainBreaks(bulkDb)).toEqual([]);
    expect(await stagedLeft(bulkDb)).toBe(0);
  });

  it('answers copies inside one chunk as duplicates without staging them twice', async () => {
    const [a, b] = history('bulk-copies', 2);
    const chunk = new StagedChunk<number>();
    expect([chunk.add(a!, 1), chunk.add(b!, 2), chunk.add(a!, 3)]).toEqual([true, true, false]);
    expect(chunk.rows.map((r) => r.tag)).toEqual([1, 2]);
    const out = await bulk.appendChunk(chunk);
    expect(out).toMatchObject({ imported: 2, duplicates: 0 });
    expect(out.lastReceiptId! - out.firstReceiptId!).toBe(1n);
  });

  it('keeps GET deliveries of one chunk apart: same empty body, different queries, one receipt and its own events each', async () => {
    // A GET callback carries its parameters in the query: every such receipt has the same (empty) body and
    // sha256, and is told apart by its dedupe key alone.
    const forms = history('bulk-get', 12).filter((r) => r.receipt.provider === 'twilio' || r.receipt.provider === 'restcomm');
    const gets = forms.slice(0, 4).map((r) => {
      const query = r.receipt.body.toString('utf8');
      const body = Buffer.alloc(0);
      return buildWebhookRecord(
        {
          provider: r.receipt.provider,
          rawBody: body,
          contentType: null,
          path: r.receipt.path,
          query,
          headers: {},
          remoteAddr: null,
          receivedAt: r.receipt.receivedAt,
          signature: { status: 'not-checked', timestamp: null },
          source: 'import',
        },
        providers,
      );
    });
    expect(gets.length).toBe(4);
    const [liveDb, bulkOnly] = await Promise.all([createTestDatabase(2), createTestDatabase(2)]);
    const app = createDatabase(bulkOnly.appUrl, 2);
    try {
      const viaLive = await liveAppend(new EventStoreRepository(liveDb.db), gets, 10);
      const viaBulk = await bulkAppend(new BulkAppendRepository(poolOf(app.db)!), gets, 10);
      expect(viaBulk).toEqual({ imported: 4, duplicates: 0 });
      expect(viaBulk).toEqual(viaLive);
      expect(await eventsOf(bulkOnly)).toEqual(await eventsOf(liveDb));
      expect(await headsOf(bulkOnly)).toEqual(await headsOf(liveDb));
      expect(await chainBreaks(bulkOnly)).toEqual([]);
    } finally {
      await app.db.destroy();
      await Promise.all([liveDb.drop(), bulkOnly.drop()]);
    }
  });

  it('stores each delivery once when live deliveries arrive while an import of the same history runs', async () => {
    const records = history('bulk-concurrent', 60);
    const distinct = new Set(records.map((r) => `${r.receipt.provider}:${r.receipt.bodySha256.toString('hex')}`)).size;
    const [db, other] = await Promise.all([createTestDatabase(4), createTestDatabase(2)]);
    const app = createDatabase(db.appUrl, 2);
    try {
      const store = new EventStoreRepository(db.db);
      const importer = new BulkAppendRepository(poolOf(app.db)!);
      // Live sends every third delivery in small batches, the import sends them all in chunks, at the same time;
      // a lock conflict is retried as the import handler retries it.
      const liveSide = records.filter((_, i) => i % 3 === 0);
      const importSide = async () => {
        const total = { imported: 0, duplicates: 0 };
        for (let i = 0; i < records.length; i += 40) {
          const chunk = new StagedChunk<number>();
          for (const r of records.slice(i, i + 40)) if (!chunk.add(r, 0)) total.duplicates += 1;
          const out = await retryTransient(() => importer.appendChunk(chunk));
          total.imported += out.imported;
          total.duplicates += out.duplicates;
        }
        return total;
      };
      const [viaLive, viaBulk] = await Promise.all([liveAppend(store, liveSide, 3), importSide()]);
      expect(viaLive.imported + viaBulk.imported).toBe(distinct);
      expect(viaBulk.imported + viaBulk.duplicates).toBe(records.length);
      expect((await receiptsOf(db)).length).toBe(distinct);
      expect(await chainBreaks(db)).toEqual([]);
      expect(await stagedLeft(db)).toBe(0);
      // The same legs as the whole history stored once on the live path. Their fields may differ where a provider
      // retry is a delivery's copy with another receive time: whichever copy came first is the one kept.
      await liveAppend(new EventStoreRepository(other.db), records, 97);
      const legKeys = (legs: Record<string, unknown>[]) => legs.map((l) => `${String(l.provider)}:${String(l.call_id)}`);
      expect(legKeys(await legsOf(db))).toEqual(legKeys(await legsOf(other)));
    } finally {
      await app.db.destroy();
      await Promise.all([db.drop(), other.drop()]);
    }
  });

  it('sends any subset of a chunk, in chunk order, and a cleared chunk is reused with a new batch', async () => {
    const records = history('bulk-subset', 6);
    const chunk = new StagedChunk<number>();
    const staged = records.filter((r, i) => chunk.add(r, i));
    const all = Buffer.concat([...chunk.copyData('events', chunk.rows, 100)]).toString('utf8');
    const lines = all.split('\n').filter(Boolean);
    expect(lines.length).toBe(staged.reduce((n, r) => n + r.events.length, 0));
    expect(lines.every((l) => l.startsWith(`${chunk.batch}\t`))).toBe(true);
    const odd = chunk.rows.filter((_, i) => i % 2 === 1);
    const some = Buffer.concat([...chunk.copyData('receipts', odd)]).toString('utf8').split('\n').filter(Boolean);
    expect(some.map((l) => Number(l.split('\t')[1]))).toEqual(odd.map((r) => chunk.rows.indexOf(r) + 1));

    const firstBatch = chunk.batch;
    chunk.clear();
    expect([chunk.length, chunk.bytes]).toEqual([0, 0]);
    expect(chunk.batch).not.toBe(firstBatch);
    expect(chunk.add(records[0]!, 0)).toBe(true);
    expect(Buffer.concat([...chunk.copyData('receipts')]).toString('utf8')).toMatch(new RegExp(`^${chunk.batch}\t1\t[^\n]*\n$`));
  });

  it('rolls the whole chunk back when the database refuses a row, and leaves nothing staged', async () => {
    const records = history('bulk-refused', 3);
    // The earliest date JavaScript holds: PostgreSQL's timestamptz starts at 4713 BC and refuses it.
    const bad: WebhookRecord = { ...records[1]!, receipt: { ...records[1]!.receipt, receivedAt: new Date(-8.64e15) } };
    const chunk = new StagedChunk<number>();
    [records[0]!, bad, records[2]!].forEach((r, i) => chunk.add(r, i));
    const before = (await receiptsOf(bulkDb)).length;
    await expect(bulk.appendChunk(chunk)).rejects.toThrow(/timestamp|date|range/i);
    expect((await receiptsOf(bulkDb)).length).toBe(before);
    expect(await stagedLeft(bulkDb)).toBe(0);
  });
});
