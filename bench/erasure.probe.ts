/**
 * `node dist/bench/erasure.probe.js` (after `nest build ledger`): how long ingest waits while an erasure runs. A fresh
 * embedded PostgreSQL is filled with EVENTS deliveries (default 50,000; one in EVERY, 1,000, from the number erased), then a
 * loop of single appends runs on its own connection before and during the erasure of that number. Printed: the
 * erasure's time, the part of it behind the fence (appends wait there: from the fence to the commit), and the appends'
 * latency before and during (p50, p99, max). On a shared machine read the ratios, not the milliseconds.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDatabase, migrateToLatest, startEmbeddedPostgres } from '../libs/db/src/index.js';
import { ErasureRepository, EventStoreRepository, type ArchiveErasure, type WebhookRecord } from '../libs/event-store/src/index.js';
import { newEvent } from '../libs/ledger/src/index.js';
import { fmt, percentile } from './bench-support.js';

const EVENTS = Number(process.env.EVENTS ?? 50_000);
/** One delivery in EVERY is from the erased number. */
const EVERY = Number(process.env.EVERY ?? 1000);
const NUMBER = '+13125550147';
const pgs = await startEmbeddedPostgres({ dataDir: await mkdtemp(join(tmpdir(), 'erasure-probe-')) });
const { db } = createDatabase(pgs.url, 4);
await migrateToLatest(db);
const ingestDb = createDatabase(pgs.url, 1).db;
const store = new EventStoreRepository(db);
const ingest = new EventStoreRepository(ingestDb);

let n = 0;
const record = (from: string): WebhookRecord => {
  const legId = `leg-${++n}`;
  const body = Buffer.from(JSON.stringify({ call_sid: legId, from, to: '+13125550100', call_status: 'trying' }));
  const party = { direction: 'inbound' as const, from, to: '+13125550100' };
  return {
    receipt: {
      provider: 'jambonz', body, bodySha256: createHash('sha256').update(body).digest(), contentType: 'application/json', path: 'status', query: '', headers: {},
      remoteAddr: null, receivedAt: new Date(), source: 'live', signatureStatus: 'verified', signatureTimestamp: null,
    },
    events: [newEvent('CallInitiated', legId, { direction: 'inbound', from, to: '+13125550100' }, { party })],
  };
};
const other = () => `+1312${String(Math.floor(Math.random() * 1e7)).padStart(7, '0')}`;
for (let i = 0; i < EVENTS; i += 500) {
  await store.appendBatch(Array.from({ length: Math.min(500, EVENTS - i) }, (_, j) => record((i + j) % EVERY === 0 ? NUMBER : other())));
}
console.log(`store: ${fmt(EVENTS)} deliveries, ${fmt(Math.ceil(EVENTS / EVERY))} from the erased number`);

/** Single appends, one after the other, until `stop` resolves: each one's latency in ms. */
const appendLoop = async (stop: Promise<unknown>) => {
  let done = false;
  void stop.then(() => (done = true));
  const ms: number[] = [];
  while (!done) {
    const t0 = performance.now();
    await ingest.appendBatch([record(other())]);
    ms.push(performance.now() - t0);
  }
  return ms;
};
const line = (label: string, ms: number[]) =>
  console.log(`${label}: ${fmt(ms.length)} appends, p50 ${fmt(percentile(ms, 0.5), 1)} ms, p99 ${fmt(percentile(ms, 0.99), 1)} ms, max ${fmt(Math.max(...ms), 1)} ms`);

let fenceFrom = 0;
let fenceTo = 0;
const timing: ArchiveErasure = {
  prepare: async () => ({ months: 0, events: 0, fields: 0, receipts: 0, notErasable: 0, changed: new Map() }),
  commit: async () => void (fenceTo = performance.now()),
  abort: async () => undefined,
};

const baseline = await appendLoop(new Promise((r) => setTimeout(r, 3000)));
const t0 = performance.now();
const erasure = new ErasureRepository(db).erase({ erasureId: randomUUID(), subject: { kind: 'number', number: NUMBER }, reason: 'probe', keyName: 'probe', requestedAt: new Date() }, timing, {
  afterFirstPass: async () => void (fenceFrom = performance.now()),
});
const during = await appendLoop(erasure);
const outcome = await erasure;
const total = performance.now() - t0;
console.log(`erasure: ${fmt(total)} ms in all (${fmt(outcome.events)} events, ${fmt(outcome.receipts)} receipts, ${fmt(outcome.streams.length)} streams); behind the fence ${fmt(fenceTo - fenceFrom, 1)} ms (+ the commit)`);
line('appends before', baseline);
line('appends during', during);
await ingestDb.destroy();
await db.destroy();
await pgs.stop();
