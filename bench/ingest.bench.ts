/**
 * `npm run bench:ingest`: one embedded PostgreSQL owned by this process; the service runs as its own process on a
 * fresh database of it. autocannon drives 64 connections at (1) POST /internal/noop, the same framework path
 * without I/O, (2) simulated provider webhooks (signed with the test secrets, every provider, retries included),
 * each a durable append through group commit, and (3) the same traffic on a second service instance configured as
 * the naive path (one transaction per request). Then an NDJSON import of simulated history, and a raw COPY of the
 * same rows into a bare table on the same server as the physical ceiling.
 */
import { createHash } from 'node:crypto';
import { pipeline } from 'node:stream/promises';
import { Readable } from 'node:stream';
import pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { importLine, signDelivery, simulate, type Delivery } from '../libs/simulator/src/index.js';
import { BENCH_SECRETS, CpuMeter, SIM_SECRETS, databaseUrl, fmt, isMain, noProbe, postgresPids, runAutocannon, scrapeHistogram, startService, type CpuShare, type PhaseProbe, type RunningService, startBenchServer } from './bench-support.js';

export const CONNECTIONS = 64;
export const API_KEY = 'bench-key-0123456789';

export interface LoadFigures {
  rps: number;
  p50: number;
  p99: number;
  requests: number;
  non2xx: number;
  errors: number;
  /** Answers saying the delivery was already stored (provider retries in the simulated traffic). */
  duplicates: number;
  peakRssMb: number;
  /** Group commits during the run, from the service's ledger_ingest_batch_* metrics. */
  batches?: { count: number; meanSize: number; meanMs: number };
}

export interface LiveIngestFigures {
  noop: LoadFigures;
  groupCommit: LoadFigures;
  naive: LoadFigures;
  /**
   * The group-commit service with LEDGER_PROJECTOR=off, same traffic on an empty database: what storing a delivery
   * costs the request path alone, so that the projector's share of the CPU per delivery is measured, not guessed.
   * Absent from older results.
   */
  storeOnly?: LoadFigures;
  deliveriesGenerated: number;
  durationSec: number;
  connections: number;
  naiveEnv: Record<string, string>;
}

export interface ImportFigures {
  rows: number;
  bytes: number;
  imported: number;
  duplicates: number;
  seconds: number;
  rowsPerSec: number;
  /** The service's RSS when the import started (a fresh process: the import added peak minus this); absent in older results. */
  startRssMb?: number;
  peakRssMb: number;
  copy: { seconds: number; rowsPerSec: number; bytes: number };
  ratio: number;
}

/**
 * Simulated traffic of every provider, generated until `count` deliveries (the last call may be cut). simulate()
 * runs in chunks of 2,000 calls with their own seeds: its expectation spreads every time into Math.min, which
 * overflows the stack somewhere above 10,000 calls.
 */
export const simulatedDeliveries = (seed: string, count: number, mode: 'live' | 'import'): Delivery[] => {
  const now = Date.now();
  const out: Delivery[] = [];
  for (let chunk = 0; out.length < count; chunk += 1) {
    if (chunk > 1000) throw new Error(`simulator gave ${out.length} deliveries, wanted ${count}`);
    const run = simulate({
      seed: `${seed}-${chunk}`,
      calls: 2000,
      provider: 'mixed',
      baseTimeMs: mode === 'live' ? Math.floor(now / 1000) * 1000 : Math.floor(now / 86_400_000) * 86_400_000,
      mode,
      days: 30,
      rate: 50,
      maxTalkSec: 600,
    });
    out.push(...run.deliveries);
  }
  return out.slice(0, count);
};

/**
 * Drives `connections` connections for `durationSec` over the deliveries in arrival order. Each is signed at send
 * time (t = now), so the ±5-minute window holds however long the run; the body is the simulator's, byte for byte.
 */
export const driveWebhooks = async (service: RunningService, deliveries: Delivery[], durationSec: number, connections: number, cursor: { i: number }) => {
  let duplicates = 0;
  const res = await runAutocannon({
    url: service.url,
    connections,
    duration: durationSec,
    requests: [
      {
        setupRequest: (req) => {
          const d = deliveries[cursor.i++ % deliveries.length]!;
          const s = signDelivery({ ...d, sentAtMs: Date.now() }, SIM_SECRETS, service.url);
          return { ...req, method: 'POST', path: s.url, headers: s.headers, body: s.body };
        },
        onResponse: (_status, body) => {
          if (body.includes('"duplicate":true')) duplicates += 1;
        },
      },
    ],
  });
  return { res, duplicates };
};

export const figures = (res: import('autocannon').Result, duplicates: number, peakRssMb: number): LoadFigures => ({
  rps: res.requests.average,
  p50: res.latency.p50,
  p99: res.latency.p99,
  requests: res.requests.total,
  non2xx: res.non2xx,
  errors: res.errors,
  duplicates,
  peakRssMb,
});

export interface LiveIngestOptions {
  /** Creates an empty database on the shared server and returns its URL. */
  freshDatabase: (name: string) => Promise<string>;
  durationSec: number;
  deliveries: number;
  connections?: number;
  /** Keep the group-commit service running for the import phase. */
  keepService?: boolean;
  probe?: PhaseProbe;
}

const batchStats = async (service: RunningService) => ({
  size: await scrapeHistogram(service.url, API_KEY, 'ledger_ingest_batch_size'),
  seconds: await scrapeHistogram(service.url, API_KEY, 'ledger_ingest_batch_seconds'),
});
const batchDelta = (a: Awaited<ReturnType<typeof batchStats>>, b: Awaited<ReturnType<typeof batchStats>>) => {
  const count = b.size.count - a.size.count;
  return { count, meanSize: count ? (b.size.sum - a.size.sum) / count : 0, meanMs: count ? ((b.seconds.sum - a.seconds.sum) / count) * 1000 : 0 };
};

/**
 * The naive path is the same service and the same `ledger_append`, with group commit switched off: a batch of at
 * most one delivery, and as many transactions in flight as the pool has connections (10), so each request is its
 * own transaction with its own commit flush, as a handler calling the store directly would do.
 */
export const NAIVE_ENV = { LEDGER_INGEST_BATCH_MAX: '1', LEDGER_INGEST_CONCURRENCY: '10', LEDGER_DB_POOL_SIZE: '10' };

export const benchLiveIngest = async (opts: LiveIngestOptions): Promise<{ figures: LiveIngestFigures; service: RunningService | null }> => {
  const connections = opts.connections ?? CONNECTIONS;
  const probe = opts.probe ?? noProbe;
  const deliveries = simulatedDeliveries('bench-live', opts.deliveries, 'live');
  const env = { ...BENCH_SECRETS, LEDGER_API_KEYS: API_KEY };

  // No cap on requests per keep-alive socket: past LEDGER_MAX_REQUESTS_PER_SOCKET (1,000) Node answers 503 to what
  // autocannon keeps sending on the socket, and the no-I/O figure of the quiet run (60,486 req/s) was 540,902
  // such refusals and 64 × 1,000 answers (bench:floor, bench/profile-notes.md). The webhook runs stay far below it.
  const group = await startService({ ...env, LEDGER_MAX_REQUESTS_PER_SOCKET: '0', DATABASE_URL: await opts.freshDatabase('bench_ingest') });
  let noop: LoadFigures;
  let groupCommit: LoadFigures;
  try {
    const noopBody = deliveries.find((d) => d.contentType.includes('json'))!.body;
    const noopOpts = { url: `${group.url}/internal/noop`, connections, method: 'POST' as const, headers: { 'content-type': 'application/json' }, body: noopBody };
    await runAutocannon({ ...noopOpts, duration: 2 });
    group.rss.reset();
    let end = probe.begin('noop', group.child.pid!);
    const noopRes = await runAutocannon({ ...noopOpts, duration: opts.durationSec });
    end();
    noop = figures(noopRes, 0, group.rss.peakMb());

    const cursor = { i: 0 };
    await driveWebhooks(group, deliveries, 2, connections, cursor);
    group.rss.reset();
    const before = await batchStats(group);
    end = probe.begin('ingest', group.child.pid!);
    const g = await driveWebhooks(group, deliveries, opts.durationSec, connections, cursor);
    end();
    groupCommit = { ...figures(g.res, g.duplicates, group.rss.peakMb()), batches: batchDelta(before, await batchStats(group)) };
  } catch (err) {
    await group.stop();
    throw err;
  }
  if (!opts.keepService) await group.stop();

  /** A service of its own on an empty database, the same deliveries from the start: 2 s of warm-up, then the phase. */
  const onFreshService = async (serviceEnv: Record<string, string>, database: string, phase: string): Promise<LoadFigures> => {
    const service = await startService({ ...env, ...serviceEnv, DATABASE_URL: await opts.freshDatabase(database) });
    try {
      const cursor = { i: 0 };
      await driveWebhooks(service, deliveries, 2, connections, cursor);
      service.rss.reset();
      const before = await batchStats(service);
      const end = probe.begin(phase, service.child.pid!);
      const n = await driveWebhooks(service, deliveries, opts.durationSec, connections, cursor);
      end();
      return { ...figures(n.res, n.duplicates, service.rss.peakMb()), batches: batchDelta(before, await batchStats(service)) };
    } finally {
      await service.stop();
    }
  };
  // The two paths see identical traffic and table sizes.
  const naive = await onFreshService(NAIVE_ENV, 'bench_ingest_naive', 'naive');
  // The same again without the projector: the request path's own cost (see LiveIngestFigures.storeOnly).
  const storeOnly = await onFreshService({ LEDGER_PROJECTOR: 'off' }, 'bench_ingest_store', 'ingest-store');
  return {
    figures: { noop, groupCommit, naive, storeOnly, deliveriesGenerated: deliveries.length, durationSec: opts.durationSec, connections, naiveEnv: NAIVE_ENV },
    service: opts.keepService ? group : null,
  };
};

/** COPY text format: backslash, tab, newline and carriage return are the characters that must be escaped. */
const copyText = (v: string | null): string => (v === null ? '\\N' : v.replace(/[\\\t\n\r]/g, (c) => (c === '\\' ? '\\\\' : c === '\t' ? '\\t' : c === '\n' ? '\\n' : '\\r')));

/**
 * A service process of its own for the import phase, on the database live ingest filled (so the import also meets
 * live deliveries to dedupe against): its RSS is the import's, not that of a heap grown by the live-ingest phases.
 */
export const startImportService = (serviceDbUrl: string): Promise<RunningService> =>
  startService({ ...BENCH_SECRETS, LEDGER_API_KEYS: API_KEY, DATABASE_URL: serviceDbUrl });

/**
 * NDJSON import through the running service (`POST /v1/import`), then the physical ceiling: the same rows' bodies
 * and metadata COPY'd by one client into a bare table (no index, no trigger, no constraint) on the same server.
 */
export const benchImport = async (service: RunningService, serviceDbUrl: string, rows: number, probe: PhaseProbe = noProbe): Promise<ImportFigures> => {
  const deliveries = simulatedDeliveries('bench-import', rows, 'import');
  const payload = Buffer.from(deliveries.map(importLine).join('\n') + '\n');

  service.rss.reset();
  const startRssMb = service.rss.peakMb();
  let end = probe.begin('import', service.child.pid!);
  const started = performance.now();
  const res = await fetch(`${service.url}/v1/import`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson', authorization: `Bearer ${API_KEY}` }, body: payload });
  const summary = (await res.json()) as { imported: number; duplicates: number; rejected: unknown[] };
  const seconds = (performance.now() - started) / 1000;
  end();
  const peakRssMb = service.rss.peakMb();
  if (summary.imported + summary.duplicates !== rows) throw new Error(`import kept ${summary.imported} + ${summary.duplicates} duplicates of ${rows} (status ${res.status}): ${JSON.stringify(summary).slice(0, 300)}`);

  // The rows as a bare table holds them: the import line's fields, the body as the text it was sent as.
  const copyPayload = Buffer.from(
    deliveries
      .map((d) => [d.provider, new Date(d.receivedAtMs).toISOString(), d.contentType, d.path, d.query || null, d.body].map(copyText).join('\t') + '\n')
      .join(''),
  );
  const client = new pg.Client({ connectionString: serviceDbUrl });
  await client.connect();
  let copySec: number;
  try {
    await client.query('DROP TABLE IF EXISTS bench_raw_copy');
    await client.query('CREATE TABLE bench_raw_copy (provider text, received_at timestamptz, content_type text, path text, query text, body text)');
    end = probe.begin('copy', null);
    const copyStarted = performance.now();
    // Chunks of 64 KiB, as a client streaming a file would send them.
    const chunks = function* () {
      for (let o = 0; o < copyPayload.length; o += 65536) yield copyPayload.subarray(o, o + 65536);
    };
    await pipeline(Readable.from(chunks()), client.query(copyFrom('COPY bench_raw_copy FROM STDIN')));
    copySec = (performance.now() - copyStarted) / 1000;
    end();
    const n = await client.query<{ n: string }>('SELECT count(*)::text AS n FROM bench_raw_copy');
    if (Number(n.rows[0]!.n) !== rows) throw new Error(`COPY stored ${n.rows[0]!.n} of ${rows} rows`);
    await client.query('DROP TABLE bench_raw_copy');
  } finally {
    await client.end();
  }
  const rowsPerSec = rows / seconds;
  const copyRowsPerSec = rows / copySec;
  return {
    rows,
    bytes: payload.length,
    imported: summary.imported,
    duplicates: summary.duplicates,
    seconds,
    rowsPerSec,
    startRssMb,
    peakRssMb,
    copy: { seconds: copySec, rowsPerSec: copyRowsPerSec, bytes: copyPayload.length },
    ratio: rowsPerSec / copyRowsPerSec,
  };
};

/** Digest of the generated traffic, printed so that two runs can be told to have sent the same bytes. */
export const trafficDigest = (deliveries: Delivery[]) => createHash('sha256').update(deliveries.map((d) => d.body).join('\n')).digest('hex').slice(0, 12);

if (isMain(import.meta.url)) {
  const duration = Number(process.env.BENCH_DURATION ?? 10);
  const importRows = Number(process.env.BENCH_IMPORT_ROWS ?? 100_000);
  const { server, dataDir, freshDatabase, stop: stopServer } = await startBenchServer('ledger-bench-ingest-');
  // CPU of the service and of PostgreSQL (every process of the server) per phase, as run-all records it.
  const cpu = new Map<string, CpuShare>();
  const probe: PhaseProbe = {
    begin(name, pid) {
      const meter = new CpuMeter({ postgres: () => postgresPids(dataDir), ...(pid === null ? {} : { service: () => [pid] }) });
      return () => void cpu.set(name, meter.stop());
    },
  };
  const usPer = (name: string, group: string, rps: number) => ((cpu.get(name)?.cores[group] ?? 0) / rps) * 1e6;
  try {
    const { figures: f } = await benchLiveIngest({ freshDatabase, durationSec: duration, deliveries: Math.max(20_000, duration * 6000), probe });
    const importUrl = databaseUrl(server.url, 'bench_ingest');
    const service = await startImportService(importUrl);
    const imp = await benchImport(service, importUrl, importRows).finally(() => service.stop());
    const g = f.groupCommit;
    console.log(`\nCall Ledger ingest benchmark (${f.connections} connections, ${duration} s per run, embedded PostgreSQL, fsync on)`);
    console.log(`no-I/O route      ${fmt(f.noop.rps)} req/s   p50 ${f.noop.p50} ms   p99 ${f.noop.p99} ms`);
    console.log(`group commit      ${fmt(g.rps)} req/s   p50 ${g.p50} ms   p99 ${g.p99} ms   (non-2xx ${g.non2xx}, errors ${g.errors}, duplicates ${g.duplicates}; ${fmt(g.batches?.count ?? 0)} batches of ${fmt(g.batches?.meanSize ?? 0, 1)})`);
    console.log(`naive (1 tx/req)  ${fmt(f.naive.rps)} req/s   p50 ${f.naive.p50} ms   p99 ${f.naive.p99} ms   (non-2xx ${f.naive.non2xx}, errors ${f.naive.errors})`);
    console.log(`ingest / no-I/O   ${fmt((g.rps / f.noop.rps) * 100, 1)} %   (target >= 25 %, p99 <= 50 ms)`);
    console.log(`ingest / naive    ${fmt(g.rps / f.naive.rps, 2)} x   (target >= 5 x)`);
    const svc = usPer('ingest', 'service', g.rps);
    const pgUs = usPer('ingest', 'postgres', g.rps);
    console.log(`CPU per delivery  service ${fmt(svc)} us + PostgreSQL ${fmt(pgUs)} us = ${fmt(svc + pgUs)} us   (target <= 400 us; no-I/O request: service ${fmt(usPer('noop', 'service', f.noop.rps))} us)`);
    if (f.storeOnly) {
      const st = f.storeOnly;
      const sSvc = usPer('ingest-store', 'service', st.rps);
      const sPg = usPer('ingest-store', 'postgres', st.rps);
      console.log(`projector off     ${fmt(st.rps)} req/s   p99 ${st.p99} ms; CPU per delivery service ${fmt(sSvc)} us + PostgreSQL ${fmt(sPg)} us = ${fmt(sSvc + sPg)} us (the projector's share above: ${fmt(svc + pgUs - sSvc - sPg)} us)`);
    }
    console.log(`import            ${fmt(imp.rowsPerSec)} rows/s over ${fmt(imp.rows)} rows; raw COPY ${fmt(imp.copy.rowsPerSec)} rows/s; ratio ${fmt(imp.ratio * 100, 1)} % (target >= 25 %)`);
    console.log(`peak service RSS  ingest ${fmt(g.peakRssMb)} MB, import ${fmt(imp.peakRssMb)} MB in a fresh process (${fmt(imp.startRssMb ?? 0)} MB when it began; import target < 250 MB)`);
  } finally {
    await stopServer();
  }
}
