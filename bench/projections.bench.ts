/**
 * `npm run bench:projections`: fills a fresh embedded PostgreSQL with at least a million events from
 * generated call scenarios (through the store's bulk append), rebuilds every projection from the first
 * event, and prints events/s and the process's peak RSS.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { createDatabase, migrateToLatest, startEmbeddedPostgres, type Database } from '../libs/db/src/index.js';
import { EventStoreRepository, type WebhookRecord } from '../libs/event-store/src/index.js';
import type { LedgerEvent, TranslatedEvent } from '../libs/ledger/src/index.js';
import { callScenarioArb } from '../libs/ledger/src/testing/call-scenarios.js';
import { callLegsProjection, Projector } from '../libs/projections/src/index.js';
import { fmt, isMain } from './bench-support.js';

const TARGET_EVENTS = Number(process.env.BENCH_EVENTS ?? 1_000_000);

const toRecord = (e: LedgerEvent, salt: number): WebhookRecord => {
  const body = Buffer.from(JSON.stringify({ salt, id: e.eventId, type: e.type, leg: e.legId, data: e.data }));
  return {
    receipt: {
      provider: e.provider, body, bodySha256: createHash('sha256').update(body).digest(), contentType: 'application/json', path: '',
      query: '', headers: {}, remoteAddr: null, receivedAt: new Date(e.receivedAt), source: 'import', signatureStatus: 'not-checked',
      signatureTimestamp: e.sentAt ? new Date(e.sentAt) : null,
    },
    events: [{ type: e.type, legId: e.legId ? `${e.legId}-${salt}` : null, accountId: e.accountId, parentLegId: e.parentLegId ? `${e.parentLegId}-${salt}` : null,
      occurredAt: e.occurredAt, providerSeq: e.providerSeq, party: e.party,
      data: 'childLegId' in (e.data as object) ? { ...(e.data as object), childLegId: `${(e.data as { childLegId: string }).childLegId}-${salt}`, ...('parentLegId' in (e.data as object) ? { parentLegId: `${(e.data as { parentLegId: string }).parentLegId}-${salt}` } : {}) } : e.data } as TranslatedEvent],
  };
};

/** Appends at least `target` events from generated call scenarios through the store's bulk append. */
export const fillScenarioEvents = async (db: Database, target: number): Promise<{ events: number; scenarios: number; seconds: number }> => {
  const store = new EventStoreRepository(db);
  const samples = fc.sample(callScenarioArb, { numRuns: 2000, seed: 42 });
  let events = 0;
  let salt = 0;
  const fillStart = performance.now();
  let batch: WebhookRecord[] = [];
  while (events < target) {
    const s = samples[salt % samples.length]!;
    salt += 1;
    for (const e of s.events) {
      batch.push(toRecord(e, salt));
      events += 1;
    }
    if (batch.length >= 2000) {
      await store.appendBatch(batch);
      batch = [];
      if (salt % 2000 === 0) process.stdout.write(`\rfilled ${fmt(events)} events`);
    }
  }
  if (batch.length) await store.appendBatch(batch);
  const seconds = (performance.now() - fillStart) / 1000;
  console.log(`\rfilled ${fmt(events)} events from ${fmt(salt)} scenarios in ${fmt(seconds, 1)} s (${fmt(events / seconds)} events/s appended)`);
  return { events, scenarios: salt, seconds };
};

if (isMain(import.meta.url)) {
  let peakRss = 0;
  const sampler = setInterval(() => (peakRss = Math.max(peakRss, process.memoryUsage().rss)), 100);

  // BENCH_DATA_DIR keeps the filled cluster between runs (iterating on the rebuild without refilling).
  const keptDir = process.env.BENCH_DATA_DIR;
  const dataDir = keptDir ?? (await mkdtemp(join(tmpdir(), 'ledger-bench-proj-')));
  const pgServer = await startEmbeddedPostgres({ dataDir });
  const { db } = createDatabase(pgServer.url, 8);
  try {
    await migrateToLatest(db);
    const already = Number((await db.selectFrom('events').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow()).n);
    if (already > 0) console.log(`reusing ${fmt(already)} events in ${dataDir}`);
    else await fillScenarioEvents(db, TARGET_EVENTS);

    const projector = new Projector(db, [callLegsProjection], { batchSize: 2000 });
    await projector.init();
    peakRss = process.memoryUsage().rss;
    const started = performance.now();
    await projector.rebuild();
    const sec = (performance.now() - started) / 1000;
    const legs = await db.selectFrom('events').select((eb) => eb.fn.countAll<string>().as('n')).executeTakeFirstOrThrow();
    console.log(`rebuild of all projections: ${fmt(Number(legs.n))} events in ${fmt(sec, 1)} s = ${fmt(Number(legs.n) / sec)} events/s (target >= 30,000)`);
    console.log(`peak RSS of this process during the rebuild: ${fmt(peakRss / 1024 / 1024)} MB`);
  } finally {
    clearInterval(sampler);
    await db.destroy();
    await pgServer.stop();
    if (!keptDir) await rm(dataDir, { recursive: true, force: true });
  }
}
