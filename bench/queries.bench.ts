/**
 * `npm run bench:queries [-- --legs N] [-- --explain] [-- --data-dir DIR [--skip-rebuild]]`: fills a fresh embedded PostgreSQL with
 * N call legs (default 1,000,000) in generated call trees through the store's bulk append, rebuilds the
 * projections, starts the built service on that database and prints p50/p99 latency of the query API over 200
 * requests per route. With `--data-dir`, the store is kept in DIR and a later run on the same DIR skips the fill
 * (it still rebuilds the projections, so that a changed read model is measured): a query change can then be
 * compared run after run against the same million legs.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { Client } from 'undici';
import { createDatabase, migrateToLatest, startEmbeddedPostgres, type Database } from '../libs/db/src/index.js';
import { EventStoreRepository, type WebhookRecord } from '../libs/event-store/src/index.js';
import type { Outcome, Provider, TranslatedEvent } from '../libs/ledger/src/index.js';
import { callLegsProjection, Projector } from '../libs/projections/src/index.js';
import { TRANSLATOR_VERSIONS } from '../libs/providers/src/index.js';
import { fmt, isMain, percentile, startService } from './bench-support.js';

const arg = (name: string): string | undefined => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
};
const TARGET_LEGS = Number(arg('legs') ?? 1_000_000);
const EXPLAIN = process.argv.includes('--explain');
const KEEP_DIR = arg('data-dir');
/** With --data-dir: keep the read model of the previous run (only when it is the same code's). */
const SKIP_REBUILD = process.argv.includes('--skip-rebuild');
/** Measured requests per route (BENCH_QUERY_REQUESTS): at 1,000 the p99 is the tenth slowest, not the second. */
const REQUESTS = Number(process.env.BENCH_QUERY_REQUESTS ?? 1000);
/** Warm-up rounds over every route before measuring (the analytics route every fifth). */
const WARM_UP = 100;
const API_KEY = 'bench-key-0123456789';
const PROVIDERS: Provider[] = ['freeclimb', 'jambonz', 'twilio', 'restcomm'];
const ACCOUNTS = 50;
const END_MS = Date.parse('2026-11-01T00:00:00Z');
const SPAN_MS = 90 * 86_400_000;

/** mulberry32: the same data on every run. */
const rng = (() => {
  let a = 0x9e3779b9;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
})();
const int = (min: number, max: number) => min + Math.floor(rng() * (max - min + 1));

export interface PlannedLeg {
  callId: string;
  parent: string | null;
  depth: number;
}

/** Tree shapes: mostly a root alone or dialling one to three children; every 100th tree has ten legs over three levels. */
const planTree = (tree: number, prefix: string): PlannedLeg[] => {
  const root = `${prefix}${tree.toString(36)}`;
  const legs: PlannedLeg[] = [{ callId: root, parent: null, depth: 0 }];
  if (tree % 100 === 99) {
    for (let c = 0; c < 3; c += 1) {
      const child = `${root}-${c}`;
      legs.push({ callId: child, parent: root, depth: 1 });
      for (let g = 0; g < 3 - c; g += 1) legs.push({ callId: `${child}-${g}`, parent: child, depth: 2 });
    }
    return legs;
  }
  const r = rng();
  const children = r < 0.4 ? 0 : r < 0.8 ? 1 : int(2, 3);
  for (let c = 0; c < children; c += 1) legs.push({ callId: `${root}-${c}`, parent: root, depth: 1 });
  return legs;
};

const LOSSES: Outcome[] = ['busy', 'no-answer', 'failed', 'canceled'];

export const legRecord = (provider: Provider, account: string, leg: PlannedLeg, startMs: number): WebhookRecord => {
  const answered = rng() < 0.65;
  const ring = int(1, 20);
  const talk = answered ? int(5, 600) : 0;
  const endMs = startMs + ring * 1000 + talk * 1000;
  const at = (ms: number) => new Date(ms).toISOString();
  const base = { legId: leg.callId, accountId: account, parentLegId: leg.parent, providerSeq: null, party: null };
  const events: TranslatedEvent[] = [
    {
      ...base,
      type: 'CallInitiated',
      occurredAt: at(startMs),
      data: { direction: leg.parent ? 'outbound-dial' : rng() < 0.7 ? 'inbound' : 'outbound-api', from: `+1312555${String(int(0, 9999)).padStart(4, '0')}`, to: `+1847555${String(int(0, 9999)).padStart(4, '0')}` },
    },
  ];
  if (answered) events.push({ ...base, type: 'CallAnswered', occurredAt: at(startMs + ring * 1000), data: {} });
  events.push({
    ...base,
    type: 'CallCompleted',
    occurredAt: at(endMs),
    data: answered ? { outcome: 'completed', durationSec: talk, endReason: 'hangup' } : { outcome: LOSSES[int(0, 3)]!, durationSec: 0 },
  });
  if (answered && rng() < 0.15) {
    events.push({ ...base, type: 'RecordingAvailable', occurredAt: at(endMs + 2000), data: { recordingId: `RE${leg.callId}`, url: `https://rec.example/${leg.callId}.wav`, durationSec: talk, scope: 'call' } });
  }
  const body = Buffer.from(JSON.stringify({ provider, account, leg, events: events.map((e) => [e.type, e.occurredAt, e.data]) }));
  return {
    receipt: {
      provider, body, bodySha256: createHash('sha256').update(body).digest(), contentType: 'application/json', path: '', query: '', headers: {},
      remoteAddr: null, receivedAt: new Date(endMs + 2500), source: 'import', signatureStatus: 'not-checked', signatureTimestamp: null,
    },
    events,
  };
};

export interface RouteLatency {
  route: string;
  p50: number;
  p99: number;
  requests: number;
}

/**
 * Garbage collections of this (the client's) process, to tell a slow request caused by the bench client from one
 * caused by the service: a request that overlaps one of the client's own pauses says nothing about the service.
 */
const clientGc: { start: number; end: number }[] = [];
new PerformanceObserver((list) => {
  for (const e of list.getEntries()) clientGc.push({ start: e.startTime, end: e.startTime + e.duration });
  if (clientGc.length > 10_000) clientGc.splice(0, clientGc.length - 10_000);
}).observe({ entryTypes: ['gc'] });

/**
 * One keep-alive connection per service, through undici's own request API rather than `fetch`: the requests stay
 * sequential (concurrency 1, as before), but fetch's WHATWG layer (streams, Response, Headers) cost the client about
 * twice the CPU per page (queries.probe: ~1.1–1.3 ms against ~0.55–0.65 ms for a 41 kB page, on a loaded machine),
 * and on two cores the client's CPU and garbage are part of every measured latency.
 */
const clients = new Map<string, Client>();
const clientFor = (base: string): Client => clients.get(base) ?? clients.set(base, new Client(base, { pipelining: 1 })).get(base)!;
export const closeQueryClients = async (): Promise<void> => {
  await Promise.all([...clients.values()].map((c) => c.close()));
  clients.clear();
};

/** GET `path` with the bench's API key; resolves once the whole body is read, with the status. */
export const getQuery = async (base: string, path: string): Promise<number> => {
  const res = await clientFor(base).request({ method: 'GET', path, headers: { authorization: `Bearer ${API_KEY}` } });
  await res.body.arrayBuffer();
  return res.statusCode;
};

/** p50/p99 of one route's samples, printed with how many of its slowest 1 % overlapped a GC of this (the client's) process. */
const summarize = (label: string, samples: { ms: number; start: number; end: number }[]): RouteLatency => {
  const times = samples.map((x) => x.ms).sort((a, b) => a - b);
  const r = { route: label, p50: percentile(times, 0.5), p99: percentile(times, 0.99), requests: samples.length };
  const slow = [...samples].sort((a, b) => b.ms - a.ms).slice(0, Math.max(1, Math.ceil(samples.length * 0.01)));
  const gcHit = slow.filter((x) => clientGc.some((g) => g.start < x.end && g.end > x.start)).length;
  console.log(`${label.padEnd(44)} p50 ${fmt(r.p50, 2).padStart(7)} ms   p99 ${fmt(r.p99, 2).padStart(7)} ms   (slowest ${slow.length}: ${gcHit} during a client GC)`);
  return r;
};

const explain = async (db: Database, title: string, query: ReturnType<typeof sql>) => {
  const rows = await sql<{ 'QUERY PLAN': string }>`EXPLAIN (ANALYZE, BUFFERS) ${query}`.execute(db);
  console.log(`\n-- ${title}\n${rows.rows.map((r) => r['QUERY PLAN']).join('\n')}`);
};

export interface LegFill {
  legs: number;
  trees: number;
  events: number;
  seconds: number;
  sampleLegs: { provider: Provider; callId: string }[];
  bigTreeLeaves: { provider: Provider; callId: string }[];
}

/** Appends `targetLegs` legs in generated call trees through the store's bulk append (no projection). */
export const fillLegs = async (db: Database, targetLegs: number): Promise<LegFill> => {
  const store = new EventStoreRepository(db);
  const sampleLegs: { provider: Provider; callId: string }[] = [];
  const bigTreeLeaves: { provider: Provider; callId: string }[] = [];
  let legs = 0;
  let events = 0;
  let tree = 0;
  const fillStart = performance.now();
  let batch: WebhookRecord[] = [];
  const inFlight: Promise<unknown>[] = [];
  const treeCount = Math.ceil(targetLegs / 2);
  while (legs < targetLegs) {
    const provider = PROVIDERS[tree % PROVIDERS.length]!;
    const account = `AC${provider.slice(0, 2)}${String(int(0, ACCOUNTS - 1)).padStart(3, '0')}`;
    const startMs = END_MS - SPAN_MS + Math.floor(((tree + rng()) / treeCount) * SPAN_MS);
    for (const leg of planTree(tree, `CA${provider.slice(0, 2)}`)) {
      batch.push(legRecord(provider, account, leg, startMs + leg.depth * 1500 + int(0, 500)));
      events += batch.at(-1)!.events.length;
      legs += 1;
      if (rng() < 0.002) sampleLegs.push({ provider, callId: leg.callId });
      if (tree % 100 === 99 && leg.depth === 2) bigTreeLeaves.push({ provider, callId: leg.callId });
    }
    tree += 1;
    if (batch.length >= 2000) {
      // Two appends in flight: one commits while the next is sent.
      inFlight.push(store.appendBatch(batch));
      batch = [];
      if (inFlight.length >= 2) await inFlight.shift();
      if (tree % 5000 < 3) process.stdout.write(`\rappended ~${fmt(legs)} legs`);
    }
  }
  inFlight.push(store.appendBatch(batch));
  await Promise.all(inFlight);
  const seconds = (performance.now() - fillStart) / 1000;
  await markTranslatedByCurrentVersions(db);
  console.log(`\rappended ${fmt(legs)} legs in ${fmt(tree)} trees (${fmt(events)} events) in ${fmt(seconds, 1)} s (${fmt(events / seconds)} events/s)`);
  return { legs, trees: tree, events, seconds, sampleLegs, bigTreeLeaves };
};

/**
 * The generated events stand for what today's translators make of a delivery, but their bodies are no provider's
 * webhooks: the service's re-translation at start would file each as unrecognized and supersede the legs. The filled
 * store is recorded as translated by the current versions (docs/providers.md, "Translator versions and re-translation").
 */
export const markTranslatedByCurrentVersions = async (db: Database): Promise<void> => {
  for (const [provider, version] of Object.entries(TRANSLATOR_VERSIONS)) {
    await sql`
      INSERT INTO translation_progress (provider, version, through_receipt, until_receipt, done)
      SELECT ${provider}, ${version}, coalesce(max(id), 0), coalesce(max(id), 0), true FROM webhook_receipts
      ON CONFLICT (provider) DO UPDATE SET version = EXCLUDED.version, through_receipt = EXCLUDED.through_receipt,
        until_receipt = EXCLUDED.until_receipt, done = true, updated_at = now()`.execute(db);
  }
};

const pick = <T>(list: T[], i: number) => list[(i * 7919) % list.length]!;
const deepUntil = (i: number) => new Date(END_MS - SPAN_MS * (0.6 + 0.3 * ((i * 37) % 100) / 100)).toISOString();
const deepFilter = (i: number) => `accountId=AC${PROVIDERS[i % 4]!.slice(0, 2)}${String(i % ACCOUNTS).padStart(3, '0')}&status=completed&until=${encodeURIComponent(deepUntil(i))}`;

/** A 7-digit substring of the generated numbers (+1312555dddd, +1847555dddd): about 200 legs of a million, either side. */
const numberNeedle = (i: number) => `555${String((i * 7919) % 10_000).padStart(4, '0')}`;

export interface QueryRoute {
  label: string;
  url: (i: number) => string;
}

/** The routes of the query issue, each asked with a few different values so that no single answer is cached by luck. */
export const queryRoutes = (fill: Pick<LegFill, 'sampleLegs' | 'bigTreeLeaves'>): QueryRoute[] => [
  { label: 'GET /v1/calls (first page, 50)', url: () => '/v1/calls' },
  { label: 'GET /v1/calls (account+status, deep, 50)', url: (i) => `/v1/calls?${deepFilter(i)}` },
  { label: 'GET /v1/calls (numberContains, total, 50)', url: (i) => `/v1/calls?numberContains=${numberNeedle(i)}&withTotal=true` },
  { label: 'GET /v1/calls/{id}/tree (10-leg tree)', url: (i) => `/v1/calls/${pick(fill.bigTreeLeaves, i).callId}/tree` },
  { label: 'GET /v1/calls/{id}/events', url: (i) => `/v1/calls/${pick(fill.sampleLegs, i).callId}/events` },
  { label: 'GET /v1/calls/{id}', url: (i) => `/v1/calls/${pick(fill.sampleLegs, i).callId}` },
  { label: 'GET /v1/analytics/summary (30 days, by day)', url: (i) => `/v1/analytics/summary?groupBy=day&since=${summarySince(i)}&until=${summaryUntil(i)}` },
];

/**
 * The store was filled by the bulk append, without a service, so a fresh service's first audit checkpoint (60 s
 * after its start, LEDGER_CHECKPOINT_INTERVAL_SEC) covers every stream of the fill at once: a million heads read,
 * hashed and stored (10.7 s of one statement on the shared machine), which lands in whatever is measured a minute
 * after the start. A service that has been running makes it a minute's worth of heads at a time, so the bench makes
 * the catch-up itself (the admin route), before the clock starts.
 */
export const catchUpAuditCheckpoint = async (base: string): Promise<void> => {
  const res = await fetch(`${base}/v1/admin/checkpoints`, { method: 'POST', headers: { authorization: `Bearer ${API_KEY}` } });
  if (res.status !== 201) throw new Error(`POST /v1/admin/checkpoints answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
};

/**
 * The bench's way before the interleaving, kept for bench/queries.order.probe.ts: route after route (in `order`,
 * indexes into queryRoutes), each `requests` sequential requests after 20 warm-up ones, after 100 warm-up requests
 * of every route but the analytics one.
 */
export const measureRouteAfterRoute = async (base: string, fill: Pick<LegFill, 'sampleLegs' | 'bigTreeLeaves'>, requests = 200, order?: number[]): Promise<RouteLatency[]> => {
  const routes = queryRoutes(fill);
  await catchUpAuditCheckpoint(base);
  for (const r of routes) {
    if (r.label.startsWith('GET /v1/analytics')) continue;
    for (let i = 0; i < 100; i += 1) await getQuery(base, r.url(1000 + i));
  }
  const out: RouteLatency[] = [];
  try {
    for (const j of order ?? routes.map((_, j) => j)) {
      const r = routes[j]!;
      for (let i = 0; i < 20; i += 1) await getQuery(base, r.url(i));
      const samples: { ms: number; start: number; end: number }[] = [];
      for (let i = 0; i < requests; i += 1) {
        const started = performance.now();
        const status = await getQuery(base, r.url(i));
        const ended = performance.now();
        if (status !== 200) throw new Error(`${r.label}: ${r.url(i)} answered ${status}`);
        samples.push({ ms: ended - started, start: started, end: ended });
      }
      out.push(summarize(r.label, samples));
    }
  } finally {
    await closeQueryClients();
  }
  return out;
};

/**
 * p50/p99 of the query routes of the query issue: `REQUESTS` sequential requests per route after a warm-up, the
 * routes interleaved (one request of each per round, the order rotated every round).
 *
 * Route after route, as this bench did before, whatever disturbed the service or the machine for a second landed
 * on the one route measured then, and with 200 requests a route's p99 was its second slowest request: two stalls
 * made a "missed". The first route measured, the first page, had the worst tail of the page routes in every run
 * (p99 8.8, 12.8 and 13.6 ms against 6–9 ms for the deep filtered page, whose statement, rows and CPU per request
 * are the same; queries.probe), i.e. it took what the service's first seconds after its start cost. Interleaved,
 * a stall is shared by every route, and at 1,000 requests the p99 is the tenth slowest.
 */
export const measureQueries = async (base: string, fill: Pick<LegFill, 'sampleLegs' | 'bigTreeLeaves'>): Promise<RouteLatency[]> => {
  const routes = queryRoutes(fill);
  await catchUpAuditCheckpoint(base);
  // A fresh service compiles its hot code (V8) and fills its connection pool during its first few hundred
  // requests. Other values than the measured ones, so that no measured page is already in PostgreSQL's buffers.
  for (let i = 0; i < WARM_UP; i += 1) {
    for (const r of routes) {
      if (r.label.startsWith('GET /v1/analytics') && i % 5 !== 0) continue;
      await getQuery(base, r.url(1000 + i));
    }
  }
  const samples = routes.map(() => [] as { ms: number; start: number; end: number }[]);
  try {
    for (let i = 0; i < REQUESTS; i += 1) {
      for (let k = 0; k < routes.length; k += 1) {
        const j = (i + k) % routes.length;
        const r = routes[j]!;
        const started = performance.now();
        const status = await getQuery(base, r.url(i));
        const ended = performance.now();
        if (status !== 200) throw new Error(`${r.label}: ${r.url(i)} answered ${status}`);
        samples[j]!.push({ ms: ended - started, start: started, end: ended });
      }
    }
  } finally {
    await closeQueryClients();
  }
  return routes.map((r, j) => summarize(r.label, samples[j]!));
};

// 30-day windows ending on a whole hour inside the fill; a few different ones so that no single answer is cached by the planner's luck.
const summaryUntil = (i: number) => new Date(END_MS - (i % 5) * 86_400_000).toISOString();
const summarySince = (i: number) => new Date(END_MS - (i % 5) * 86_400_000 - 30 * 86_400_000).toISOString();

export const QUERY_API_KEY = API_KEY;

/** A latency over a partial read model would flatter it: every leg stream must have its row first. */
export const assertEveryLegProjected = async (db: Database) => {
  const r = await sql<{ missing: string }>`
    SELECT count(*)::text AS missing FROM streams s
    WHERE s.stream_name LIKE 'callLeg-%'
      AND NOT EXISTS (SELECT 1 FROM call_legs l WHERE 'callLeg-' || l.provider || ':' || l.call_id = s.stream_name)`.execute(db);
  if (r.rows[0]!.missing !== '0') throw new Error(`${r.rows[0]!.missing} leg streams have no row in call_legs after the rebuild`);
};

if (isMain(import.meta.url)) {
  const dataDir = KEEP_DIR ?? (await mkdtemp(join(tmpdir(), 'ledger-bench-queries-')));
  const fillFile = join(dataDir, 'fill.json');
  const pgServer = await startEmbeddedPostgres({ dataDir });
  const { db } = createDatabase(pgServer.url, 8);
  let service: Awaited<ReturnType<typeof startService>> | null = null;
  try {
    await migrateToLatest(db);
    let fill: LegFill;
    if (KEEP_DIR && existsSync(fillFile)) {
      fill = JSON.parse(await readFile(fillFile, 'utf8')) as LegFill;
      console.log(`reusing the store in ${dataDir}: ${fmt(fill.legs)} legs (${fmt(fill.events)} events)`);
    } else {
      fill = await fillLegs(db, TARGET_LEGS);
      if (KEEP_DIR) await writeFile(fillFile, JSON.stringify(fill));
    }
    const { sampleLegs, bigTreeLeaves } = fill;
    const projector = new Projector(db, [callLegsProjection], { batchSize: 2000 });
    await projector.init();
    if (!(KEEP_DIR && SKIP_REBUILD)) {
      const rebuildStart = performance.now();
      await projector.rebuild();
      console.log(`projection rebuild: ${fmt((performance.now() - rebuildStart) / 1000, 1)} s`);
    }
    await projector.stop();
    // What autovacuum would do after a while; without it the planner guesses row counts of fresh tables.
    await sql`VACUUM ANALYZE`.execute(db);
    const [{ n }] = (await sql<{ n: string }>`SELECT count(*)::text AS n FROM call_legs`.execute(db)).rows as [{ n: string }];
    console.log(`call_legs rows: ${fmt(Number(n))}\n`);
    await assertEveryLegProjected(db);

    if (EXPLAIN) {
      const i = 3;
      const acct = `AC${PROVIDERS[i % 4]!.slice(0, 2)}${String(i % ACCOUNTS).padStart(3, '0')}`;
      const leaf = pick(bigTreeLeaves, i);
      const leg = pick(sampleLegs, i);
      // The statements CallsRepository sends (same SQL, literal values).
      await explain(db, 'first page of /v1/calls', sql`SELECT * FROM call_legs WHERE started_at IS NOT NULL AND true ORDER BY started_at DESC NULLS LAST, provider, call_id LIMIT 51`);
      await explain(db, 'filtered page deep in the history', sql`SELECT * FROM call_legs WHERE started_at IS NOT NULL AND account_id = ${acct} AND status = 'completed' AND started_at < ${deepUntil(i)}::timestamptz ORDER BY started_at DESC NULLS LAST, provider, call_id LIMIT 51`);
      await explain(db, 'next page by cursor', sql`SELECT * FROM call_legs WHERE started_at IS NOT NULL AND started_at <= ${deepUntil(i)}::timestamptz AND (started_at < ${deepUntil(i)}::timestamptz OR (provider, call_id) > ('jambonz', 'x')) ORDER BY started_at DESC NULLS LAST, provider, call_id LIMIT 51`);
      await explain(db, 'one leg (call id without provider)', sql`SELECT * FROM call_legs WHERE provider = ANY (${PROVIDERS}::text[]) AND call_id = ${leg.callId}`);
      await explain(db, 'legs of a tree', sql`SELECT * FROM call_legs WHERE provider = ${leaf.provider} AND root_call_id = ${leaf.callId.split('-')[0]}`);
      await explain(db, "a leg's events with receipts", sql`SELECT e.*, r.body, sha256(r.body) FROM events e JOIN webhook_receipts r ON r.id = e.receipt_id WHERE e.stream_name = ANY (${[`callLeg-${leg.provider}:${leg.callId}`]}::text[]) ORDER BY e.global_position`);
      await explain(db, 'recordings of a page', sql`SELECT r.* FROM recordings r JOIN unnest(${[leg.provider]}::text[], ${[leg.callId]}::text[]) AS t(p, c) ON r.provider = t.p AND r.call_id = t.c ORDER BY r.created_at, r.recording_id`);
      console.log('');
    }

    service = await startService({ DATABASE_URL: pgServer.url, LEDGER_API_KEYS: API_KEY, LOG_LEVEL: 'warn' });
    const base = service.url;
    await measureQueries(base, fill);
    console.log(`\nservice peak RSS: ${fmt(service.peakRssMb())} MB`);
  } finally {
    await service?.stop();
    await db.destroy();
    await pgServer.stop();
    if (!KEEP_DIR) await rm(dataDir, { recursive: true, force: true });
  }
}
