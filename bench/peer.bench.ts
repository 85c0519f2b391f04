/**
 * `npm run bench:peer`: the same neutral events appended by the ledger's store (GroupCommitWriter over
 * `ledger_append`, as the live webhook path uses it) and by Emmett's PostgreSQL event store
 * (`getPostgreSQLEventStore` + `appendToStream`), on the same embedded PostgreSQL, each on an empty database,
 * with the same appenders, the same pool size and the server's durability settings (read back and reported).
 * Standalone (`node dist/bench/peer.bench.js`) it also prints where an append's time went on each side: CPU per
 * append of the PostgreSQL server and of this process (from /proc), commits and WAL fsyncs per append
 * (pg_stat_database, pg_stat_io) and, for the ledger, deliveries per transaction. Env: BENCH_APPENDERS (8,64),
 * BENCH_APPENDS (20000), LEDGER_INGEST_CONCURRENCY / LEDGER_INGEST_MAX_CONCURRENCY (the writer's, default 2),
 * BENCH_ROUNDS (1): more than one alternates the sides in that many rounds (`benchPeerInterleaved`), for a shared
 * machine; `npm run bench` runs them one after the other, as before.
 */
import { createHash } from 'node:crypto';
import { getPostgreSQLEventStore } from '@event-driven-io/emmett-postgresql';
import pg from 'pg';
import { createDatabase, migrateToLatest } from '../libs/db/src/index.js';
import { EventStoreRepository, GroupCommitWriter, legStreamName, type WebhookRecord } from '../libs/event-store/src/index.js';
import { ProviderRegistry } from '../libs/providers/src/index.js';
import { buildWebhookRecord } from '../apps/ledger/src/webhooks/webhook-record.factory.js';
import { CpuMeter, fmt, isMain, noProbe, type PhaseProbe, postgresPids, startBenchServer } from './bench-support.js';
import { simulatedDeliveries } from './ingest.bench.js';

/** pg.Pool's default, which Emmett's pool (dumbo) keeps; the ledger's pool is given the same. */
const POOL_SIZE = 10;

export interface PeerSide {
  seconds: number;
  appendsPerSec: number;
  eventsPerSec: number;
  errors: number;
  /** Where an append's time went (absent without the server's data directory): CPU µs per append from /proc. */
  cost?: PeerCost;
}

export interface PeerCost {
  postgresUs: number;
  /** This process: the store's client side (record building, the driver); the appenders' loop is shared. */
  nodeUs: number;
  /** Outside both (other users of the machine), in cores over the phase. */
  otherCores: number;
  /** pg_stat_database commits of the side's database, and WAL fsyncs of the server, per append. */
  commits: number;
  walFsyncs: number;
  /** Ledger only: deliveries per `ledger_append` transaction. */
  batch?: number;
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
export const peerAppends = (count: number): Append[] => {
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
const queuesOf = (appends: Append[], appenders: number): Append[][] => {
  const queues: Append[][] = Array.from({ length: appenders }, () => []);
  for (const a of appends) queues[createHash('md5').update(a.stream).digest().readUInt32BE(0) % appenders]!.push(a);
  return queues;
};

/** Each queue is one appender: its appends one after the other, all queues at once. */
const runQueues = async (queues: Append[][], append: (a: Append) => Promise<void>): Promise<PeerSide> => {
  let errors = 0;
  let firstError: unknown = null;
  const all = queues.flat();
  const events = eventsOf(all);
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
  return { seconds, appendsPerSec: all.length / seconds, eventsPerSec: events / seconds, errors };
};

export const runAppenders = (appends: Append[], appenders: number, append: (a: Append) => Promise<void>): Promise<PeerSide> =>
  runQueues(queuesOf(appends, appenders), append);

/** Commits of one database and WAL fsyncs of the server, as the backends have reported them. */
const pgCounters = async (url: string): Promise<{ commits: number; walFsyncs: number }> => {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    const r = await c.query<{ commits: string; fsyncs: string }>(
      `SELECT (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database())::text AS commits,
              (SELECT coalesce(sum(fsyncs), 0) FROM pg_stat_io WHERE object = 'wal')::text AS fsyncs`,
    );
    return { commits: Number(r.rows[0]!.commits), walFsyncs: Number(r.rows[0]!.fsyncs) };
  } finally {
    await c.end();
  }
};

/**
 * Runs one side's appenders with the CPU of the server and of this process metered, and the commits and WAL
 * fsyncs counted (read after `close`, once the pool's backends have exited and so reported their statistics).
 */
export const measured = async (
  url: string,
  dataDir: string | undefined,
  appends: number,
  run: () => Promise<PeerSide>,
  close: () => Promise<void>,
): Promise<PeerSide> => {
  if (!dataDir) {
    try {
      return await run();
    } finally {
      await close();
    }
  }
  const before = await pgCounters(url);
  const meter = new CpuMeter({ postgres: () => postgresPids(dataDir), node: () => [process.pid] });
  let side: PeerSide;
  try {
    side = await run();
  } finally {
    await close();
  }
  const cpu = meter.stop();
  // Backends report their counters as they exit; a closed pool's may take a moment.
  await new Promise((r) => setTimeout(r, 300));
  const after = await pgCounters(url);
  const per = (cores: number) => ((cores * cpu.wallSec) / appends) * 1e6;
  return {
    ...side,
    cost: {
      postgresUs: per(cpu.cores.postgres!),
      nodeUs: per(cpu.cores.node!),
      otherCores: cpu.otherCores,
      commits: (after.commits - before.commits) / appends,
      walFsyncs: (after.walFsyncs - before.walFsyncs) / appends,
    },
  };
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

/**
 * The ledger's side: the service's defaults (LEDGER_INGEST_BATCH_MAX 500, LEDGER_INGEST_CONCURRENCY 2,
 * LEDGER_INGEST_MAX_CONCURRENCY 2 within a pool of 10); LEDGER_INGEST_CONCURRENCY and LEDGER_INGEST_MAX_CONCURRENCY
 * in this process's environment override the last two, to compare.
 */
const ledgerWriter = (db: ReturnType<typeof createDatabase>['db']): { writer: GroupCommitWriter; append: (a: Append) => Promise<void> } => {
  const concurrency = Number(process.env.LEDGER_INGEST_CONCURRENCY ?? 2);
  const maxConcurrency = Number(process.env.LEDGER_INGEST_MAX_CONCURRENCY ?? concurrency);
  const writer = new GroupCommitWriter(new EventStoreRepository(db), { batchMax: 500, queueMax: 1_000_000, concurrency, maxConcurrency });
  return {
    writer,
    append: async (a) => {
      const o = await writer.submit(a.record);
      if (o.duplicate) throw new Error('unexpected duplicate');
    },
  };
};

const emmettAppend = (store: ReturnType<typeof getPostgreSQLEventStore>) => async (a: Append): Promise<void> => {
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
};

/** Both benches' result: the run's shape, each side's figures and their ratio. */
const peerFigures = (appenders: number, appends: Append[], durability: Record<string, string>, ledger: PeerSide, emmett: PeerSide): PeerFigures => ({
  appenders,
  appends: appends.length,
  events: eventsOf(appends),
  streams: new Set(appends.map((a) => a.stream)).size,
  poolSize: POOL_SIZE,
  durability,
  ledger,
  emmett,
  ratio: ledger.appendsPerSec / emmett.appendsPerSec,
});

const eventsOf = (appends: Append[]): number => appends.reduce((s, a) => s + a.record.events.length, 0);

export const benchPeer = async (
  freshDatabase: (name: string) => Promise<string>,
  opts: { appends: number; appenders: number; probe?: PhaseProbe; dataDir?: string },
): Promise<PeerFigures> => {
  const probe = opts.probe ?? noProbe;
  const appends = peerAppends(opts.appends);

  const ledgerUrl = await freshDatabase('bench_peer_ledger');
  const durability = await durabilitySettings(ledgerUrl);
  const { db } = createDatabase(ledgerUrl, POOL_SIZE);
  let closed = false;
  const closeLedger = async () => {
    if (closed) return;
    closed = true;
    await db.destroy();
  };
  let ledger: PeerSide;
  try {
    await migrateToLatest(db);
    const { writer, append } = ledgerWriter(db);
    ledger = await measured(
      ledgerUrl,
      opts.dataDir,
      appends.length,
      async () => {
        const end = probe.begin(`peer-ledger-${opts.appenders}`, null);
        const side = await runAppenders(appends, opts.appenders, append);
        end();
        return side;
      },
      closeLedger,
    );
    if (ledger.cost) ledger.cost.batch = writer.stats.records / Math.max(1, writer.stats.batches);
  } finally {
    await closeLedger();
  }

  const emmettUrl = await freshDatabase('bench_peer_emmett');
  const store = getPostgreSQLEventStore(emmettUrl);
  let storeClosed = false;
  const closeStore = async () => {
    if (storeClosed) return;
    storeClosed = true;
    await store.close();
  };
  let emmett: PeerSide;
  try {
    await store.schema.migrate();
    emmett = await measured(
      emmettUrl,
      opts.dataDir,
      appends.length,
      async () => {
        const end = probe.begin(`peer-emmett-${opts.appenders}`, null);
        const side = await runAppenders(appends, opts.appenders, emmettAppend(store));
        end();
        return side;
      },
      closeStore,
    );
  } finally {
    await closeStore();
  }
  return peerFigures(opts.appenders, appends, durability, ledger, emmett);
};

/**
 * The same comparison with the two sides alternating: each appender's queue is cut into `rounds` consecutive
 * parts, and round after round the ledger appends its part, then Emmett the same part (each on its own database,
 * opened once). On a shared machine the other tenants' load then weighs on both sides alike instead of on
 * whichever ran while it lasted; rates are total appends over each side's summed time. Each stream's appends keep
 * their order (one appender, consecutive parts). WAL fsyncs are not split between the sides here (the server
 * counts them for both): NaN.
 */
export const benchPeerInterleaved = async (
  freshDatabase: (name: string) => Promise<string>,
  opts: { appends: number; appenders: number; rounds: number; dataDir?: string },
): Promise<PeerFigures> => {
  const appends = peerAppends(opts.appends);
  const events = eventsOf(appends);
  const ledgerUrl = await freshDatabase('bench_peer_ledger');
  const emmettUrl = await freshDatabase('bench_peer_emmett');
  const durability = await durabilitySettings(ledgerUrl);
  const { db } = createDatabase(ledgerUrl, POOL_SIZE);
  const store = getPostgreSQLEventStore(emmettUrl);
  const queues = queuesOf(appends, opts.appenders);
  const part = (r: number) => queues.map((q) => q.slice(Math.floor((q.length * r) / opts.rounds), Math.floor((q.length * (r + 1)) / opts.rounds)));
  const sum = () => ({ seconds: 0, errors: 0, postgresSec: 0, nodeSec: 0, otherSec: 0 });
  const acc = { ledger: sum(), emmett: sum() };
  let writer: GroupCommitWriter;
  const before: Record<string, number> = {};
  try {
    await migrateToLatest(db);
    await store.schema.migrate();
    const ledger = ledgerWriter(db);
    writer = ledger.writer;
    const sides = { ledger: ledger.append, emmett: emmettAppend(store) };
    if (opts.dataDir) for (const [k, url] of [['ledger', ledgerUrl], ['emmett', emmettUrl]] as const) before[k] = (await pgCounters(url)).commits;
    for (let r = 0; r < opts.rounds; r += 1) {
      for (const name of ['ledger', 'emmett'] as const) {
        const dir = opts.dataDir;
        const meter = dir ? new CpuMeter({ postgres: () => postgresPids(dir), node: () => [process.pid] }) : null;
        const side = await runQueues(part(r), sides[name]);
        const cpu = meter?.stop();
        const a = acc[name];
        a.seconds += side.seconds;
        a.errors += side.errors;
        if (cpu) {
          a.postgresSec += cpu.cores.postgres! * cpu.wallSec;
          a.nodeSec += cpu.cores.node! * cpu.wallSec;
          a.otherSec += cpu.otherCores * cpu.wallSec;
        }
      }
    }
  } finally {
    await db.destroy();
    await store.close();
  }
  // Backends report their counters as they exit; a closed pool's may take a moment.
  if (opts.dataDir) await new Promise((r) => setTimeout(r, 300));
  const result = async (name: 'ledger' | 'emmett', url: string): Promise<PeerSide> => {
    const a = acc[name];
    const side: PeerSide = { seconds: a.seconds, appendsPerSec: appends.length / a.seconds, eventsPerSec: events / a.seconds, errors: a.errors };
    if (!opts.dataDir) return side;
    const per = (sec: number) => (sec / appends.length) * 1e6;
    const commits = ((await pgCounters(url)).commits - before[name]!) / appends.length;
    return { ...side, cost: { postgresUs: per(a.postgresSec), nodeUs: per(a.nodeSec), otherCores: a.otherSec / a.seconds, commits, walFsyncs: Number.NaN } };
  };
  const ledger = await result('ledger', ledgerUrl);
  if (ledger.cost) ledger.cost.batch = writer!.stats.records / Math.max(1, writer!.stats.batches);
  const emmett = await result('emmett', emmettUrl);
  return peerFigures(opts.appenders, appends, durability, ledger, emmett);
};

if (isMain(import.meta.url)) {
  const { freshDatabase, dataDir, stop: stopServer } = await startBenchServer('ledger-bench-peer-');
  try {
    for (const appenders of (process.env.BENCH_APPENDERS ?? '8,64').split(',').map(Number)) {
      const appends = Number(process.env.BENCH_APPENDS ?? 20_000);
      const rounds = Number(process.env.BENCH_ROUNDS ?? 1);
      const f = rounds > 1 ? await benchPeerInterleaved(freshDatabase, { appends, appenders, rounds, dataDir }) : await benchPeer(freshDatabase, { appends, appenders, dataDir });
      console.log(`\n${fmt(f.appends)} appends (${fmt(f.events)} events, ${fmt(f.streams)} streams), ${appenders} appenders, pool ${f.poolSize}, ${JSON.stringify(f.durability)}`);
      for (const [name, side] of [['ledger', f.ledger], ['emmett', f.emmett]] as const) {
        const c = side.cost;
        const cost = c
          ? `  per append: postgres ${fmt(c.postgresUs)} µs, node ${fmt(c.nodeUs)} µs, ${fmt(c.commits, 2)} commits, ${Number.isNaN(c.walFsyncs) ? '?' : fmt(c.walFsyncs, 2)} WAL fsyncs${c.batch === undefined ? '' : `, ${fmt(c.batch, 1)} per transaction`}; other load ${fmt(c.otherCores, 2)} cores`
          : '';
        console.log(`${name.padEnd(7)} ${fmt(side.appendsPerSec)} appends/s  ${fmt(side.eventsPerSec)} events/s  (${side.errors} errors)${cost}`);
      }
      console.log(`ratio   ${fmt(f.ratio, 2)} x`);
    }
  } finally {
    await stopServer();
  }
}
