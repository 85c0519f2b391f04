/**
 * `npm run bench:peer`: the same neutral events appended by the ledger's store (GroupCommitWriter over
 * `ledger_append`, as the live webhook path uses it) and by Emmett's PostgreSQL event store
 * (`getPostgreSQLEventStore` + `appendToStream`), on the same embedded PostgreSQL, each on an empty database,
 * with the same appenders, the same pool size and the server's durability settings (read back and reported).
 */
import { createHash } from 'node:crypto';
import { getPostgreSQLEventStore } from '@event-driven-io/emmett-postgresql';
import pg from 'pg';
import { createDatabase, migrateToLatest } from '../libs/db/src/index.js';
import { EventStoreRepository, GroupCommitWriter, legStreamName, type WebhookRecord } from '../libs/event-store/src/index.js';
import { ProviderRegistry } from '../libs/providers/src/index.js';
import { buildWebhookRecord } from '../apps/ledger/src/webhooks/webhook-record.factory.js';
import { fmt, isMain, noProbe, type PhaseProbe, startBenchServer } from './bench-support.js';
import { simulatedDeliveries } from './ingest.bench.js';

/** pg.Pool's default, which Emmett's pool (dumbo) keeps; the ledger's pool is given the same. */
const POOL_SIZE = 10;

export interface PeerSide {
  seconds: number;
  appendsPerSec: number;
  eventsPerSec: number;
  errors: number;
}

export interface PeerFigures {
  appenders: number;
  appends: number;
  events: number;
  streams: number;
  poolSize: number;
  durability: Record<string, string>;
  ledger: PeerSide;
  emmett: PeerSide;
  /** ledger appends/s over Emmett's. */
  ratio: number;
}

interface Append {
  stream: string;
  record: WebhookRecord;
}

/**
 * Simulated deliveries translated by the real adapters; kept when every event lands in one leg stream (an Emmett
 * append writes one stream), without provider retries (the ledger would answer them as duplicates, for free).
 */
const peerAppends = (count: number): Append[] => {
  const registry = new ProviderRegistry({ freeclimb: [], jambonz: [], twilio: [], restcomm: [] }, undefined);
  const seen = new Set<string>();
  const out: Append[] = [];
  for (const d of simulatedDeliveries('bench-peer', Math.ceil(count * 1.6), 'live')) {
    if (d.retry || seen.has(d.body)) continue;
    seen.add(d.body);
    const record = buildWebhookRecord(
      {
        provider: d.provider,
        rawBody: Buffer.from(d.body),
        contentType: d.contentType,
        path: d.path.replace(/^\//, ''),
        query: d.query,
        headers: { 'content-type': d.contentType },
        remoteAddr: '127.0.0.1',
        receivedAt: new Date(d.receivedAtMs),
        signature: { status: 'verified', timestamp: new Date(d.sentAtMs) },
        source: 'live',
      },
      registry,
    );
    const streams = new Set(record.events.map((e) => (e.legId ? legStreamName(d.provider, e.legId) : null)));
    if (record.events.length === 0 || streams.size !== 1 || streams.has(null)) continue;
    out.push({ stream: [...streams][0]!, record });
    if (out.length === count) return out;
  }
  throw new Error(`only ${out.length} single-stream deliveries, wanted ${count}`);
};

/**
 * Every append goes to the appender that owns its stream (hash of the stream name), so that one stream's appends
 * are never concurrent: neither store then sees a version conflict, and both get the identical schedule.
 */
const runAppenders = async (appends: Append[], appenders: number, append: (a: Append) => Promise<void>): Promise<PeerSide> => {
  const queues: Append[][] = Array.from({ length: appenders }, () => []);
  for (const a of appends) queues[createHash('md5').update(a.stream).digest().readUInt32BE(0) % appenders]!.push(a);
  let errors = 0;
  let firstError: unknown = null;
  const events = appends.reduce((s, a) => s + a.record.events.length, 0);
  const started = performance.now();
  await Promise.all(
    queues.map(async (q) => {
      for (const a of q) {
        try {
          await append(a);
        } catch (err) {
          errors += 1;
          firstError ??= err;
        }
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  if (firstError) console.error(`first append error: ${(firstError as Error).message}`);
  return { seconds, appendsPerSec: appends.length / seconds, eventsPerSec: events / seconds, errors };
};

const durabilitySettings = async (url: string): Promise<Record<string, string>> => {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ name: string; setting: string }>(
      `SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'wal_sync_method', 'full_page_writes', 'commit_delay', 'wal_level', 'shared_buffers', 'max_wal_size') ORDER BY name`,
    );
    return Object.fromEntries(r.rows.map((x) => [x.name, x.setting]));
  } finally {
    await c.end();
  }
};

export const benchPeer = async (freshDatabase: (name: string) => Promise<string>, opts: { appends: number; appenders: number; probe?: PhaseProbe }): Promise<PeerFigures> => {
  const probe = opts.probe ?? noProbe;
  const appends = peerAppends(opts.appends);
  const events = appends.reduce((s, a) => s + a.record.events.length, 0);

  const ledgerUrl = await freshDatabase('bench_peer_ledger');
  const durability = await durabilitySettings(ledgerUrl);
  const { db } = createDatabase(ledgerUrl, POOL_SIZE);
  let ledger: PeerSide;
  try {
    await migrateToLatest(db);
    // The service's defaults (LEDGER_INGEST_BATCH_MAX 500, LEDGER_INGEST_CONCURRENCY 2, LEDGER_INGEST_MAX_CONCURRENCY 2
    // within a pool of 10); LEDGER_INGEST_CONCURRENCY and LEDGER_INGEST_MAX_CONCURRENCY in this process's environment
    // override the last two, to compare.
    const concurrency = Number(process.env.LEDGER_INGEST_CONCURRENCY ?? 2);
    const maxConcurrency = Number(process.env.LEDGER_INGEST_MAX_CONCURRENCY ?? concurrency);
    const writer = new GroupCommitWriter(new EventStoreRepository(db), { batchMax: 500, queueMax: 1_000_000, concurrency, maxConcurrency });
    const end = probe.begin(`peer-ledger-${opts.appenders}`, null);
    ledger = await runAppenders(appends, opts.appenders, async (a) => {
      const o = await writer.submit(a.record);
      if (o.duplicate) throw new Error('unexpected duplicate');
    });
    end();
  } finally {
    await db.destroy();
  }

  const emmettUrl = await freshDatabase('bench_peer_emmett');
  const store = getPostgreSQLEventStore(emmettUrl);
  let emmett: PeerSide;
  try {
    await store.schema.migrate();
    const end = probe.begin(`peer-emmett-${opts.appenders}`, null);
    emmett = await runAppenders(appends, opts.appenders, async (a) => {
      const r = a.record.receipt;
      await store.appendToStream(
        a.stream,
        a.record.events.map((e) => ({
          type: e.type,
          data: e.data as Record<string, unknown>,
          // What the ledger keeps beside each event's data (its metadata column), minus the receipt it links to.
          metadata: { provider: r.provider, legId: e.legId, accountId: e.accountId, parentLegId: e.parentLegId, party: e.party, providerSeq: e.providerSeq, occurredAt: e.occurredAt, receivedAt: r.receivedAt.toISOString() },
        })),
      );
    });
    end();
  } finally {
    await store.close();
  }
  return {
    appenders: opts.appenders,
    appends: appends.length,
    events,
    streams: new Set(appends.map((a) => a.stream)).size,
    poolSize: POOL_SIZE,
    durability,
    ledger,
    emmett,
    ratio: ledger.appendsPerSec / emmett.appendsPerSec,
  };
};

if (isMain(import.meta.url)) {
  const { freshDatabase, stop: stopServer } = await startBenchServer('ledger-bench-peer-');
  try {
    for (const appenders of (process.env.BENCH_APPENDERS ?? '8,64').split(',').map(Number)) {
      const f = await benchPeer(freshDatabase, { appends: Number(process.env.BENCH_APPENDS ?? 20_000), appenders });
      console.log(`\n${fmt(f.appends)} appends (${fmt(f.events)} events, ${fmt(f.streams)} streams), ${appenders} appenders, pool ${f.poolSize}, ${JSON.stringify(f.durability)}`);
      console.log(`ledger  ${fmt(f.ledger.appendsPerSec)} appends/s  ${fmt(f.ledger.eventsPerSec)} events/s  (${f.ledger.errors} errors)`);
      console.log(`emmett  ${fmt(f.emmett.appendsPerSec)} appends/s  ${fmt(f.emmett.eventsPerSec)} events/s  (${f.emmett.errors} errors)`);
      console.log(`ratio   ${fmt(f.ratio, 2)} x`);
    }
  } finally {
    await stopServer();
  }
}
