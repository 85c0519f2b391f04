/**
 * `npm run bench:floor` (BENCH_DURATION s per load run, default 10; BENCH_IMPORT_ROWS, default 100,000): what the
 * cheapest honest implementation of the guarantees behind issue 14's ingest and import targets costs on this
 * machine, side by side with the real service in one run, on one embedded PostgreSQL with the server's durability
 * (fsync on, synchronous_commit on; bench/floor-server.ts says what each floor does and leaves out).
 *
 * Live (64 connections, the same simulated deliveries as `bench:ingest`, each run 2 s of warm-up then the
 * measured seconds, each on an empty database): the service's no-I/O route and its webhooks; the floor's no-I/O
 * route, (a) signed + parsed + deduped raw bodies under group commit, (b) the same plus a per-stream hash chain
 * and stream heads. Import (the same NDJSON rows as `bench:ingest`): the service's `POST /v1/import`, a raw COPY of
 * the rows into a bare table (the bench's ceiling), (c) the floor's COPY-into-staging + one set-wise
 * INSERT … SELECT … ON CONFLICT per chunk, and (c+chain) the same through the chain. For each: rate, CPU per
 * delivery or row of the serving process and of every PostgreSQL process (/proc), and the ratios the targets use.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import pg from 'pg';
import { importLine, type Delivery } from '../libs/simulator/src/index.js';
import { freePort } from '../libs/db/src/embedded-postgres.js';
import { BENCH_SECRETS, CpuMeter, databaseUrl, fmt, postgresPids, runAutocannon, startBenchServer, startService, type CpuShare } from './bench-support.js';
import { floorSignature } from './floor-server.js';
import { API_KEY, CONNECTIONS, benchImport, driveWebhooks, simulatedDeliveries, startImportService } from './ingest.bench.js';

const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const IMPORT_ROWS = Number(process.env.BENCH_IMPORT_ROWS ?? 100_000);

interface Row {
  name: string;
  /** Answers per second, and the 2xx among them (the no-I/O route's refusals are counted apart). */
  rps: number;
  okRps: number;
  p50: number;
  p99: number;
  non2xx: number;
  statuses: string;
  duplicates: number;
  cpu: CpuShare;
}

/**
 * The floor's chain must hold, or its cost proves nothing: every stream's links numbered 1..n without a gap, each
 * hash sha256(previous hash ‖ body), and the head row at the last link. Also every stored receipt once (the key is
 * the primary key; checked anyway).
 */
const verifyChain = async (dbUrl: string): Promise<string> => {
  const client = new pg.Client({ connectionString: dbUrl });
  await client.connect();
  try {
    // One snapshot for the heads and the links.
    await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY');
    const heads = new Map((await client.query<{ stream: string; version: number; hash: Buffer }>('SELECT stream, version, hash FROM floor_heads')).rows.map((h) => [h.stream, h]));
    const links = (await client.query<{ stream: string; version: number; hash: Buffer; body: Buffer; dedupe_key: Buffer }>('SELECT stream, version, hash, body, dedupe_key FROM floor_chain ORDER BY stream, version')).rows;
    let prev: { stream: string; version: number; hash: Buffer } = { stream: '', version: 0, hash: Buffer.alloc(0) };
    const ends = new Map<string, { version: number; hash: Buffer }>();
    for (const l of links) {
      if (l.stream !== prev.stream) prev = { stream: l.stream, version: 0, hash: Buffer.alloc(0) };
      const want = createHash('sha256').update(prev.hash).update(l.body).digest();
      if (l.version !== prev.version + 1 || !want.equals(l.hash)) throw new Error(`chain broken at ${l.stream} v${l.version}`);
      if (!createHash('sha256').update(l.body).digest().equals(l.dedupe_key)) throw new Error(`dedupe key of ${l.stream} v${l.version} is not its body's sha256`);
      prev = { stream: l.stream, version: l.version, hash: l.hash };
      ends.set(l.stream, prev);
    }
    for (const [stream, e] of ends) {
      const h = heads.get(stream);
      if (!h || h.version !== e.version || !h.hash.equals(e.hash)) throw new Error(`head of ${stream} is not its last link`);
    }
    return `chain verified: ${fmt(links.length)} links in ${fmt(ends.size)} streams, heads at their last links`;
  } finally {
    await client.end();
  }
};

const usPer = (cpu: CpuShare, group: string, perSec: number) => ((cpu.cores[group] ?? 0) / perSec) * 1e6;

const startFloor = async (dbUrl: string, mode: 'plain' | 'chain'): Promise<{ url: string; child: ChildProcess; stop: () => Promise<void> }> => {
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, ['dist/bench/floor-server.js'], { env: { ...process.env, DATABASE_URL: dbUrl, PORT: String(port), FLOOR_MODE: mode }, stdio: ['ignore', 'ignore', 'inherit'] });
  for (const deadline = Date.now() + 30_000; ; ) {
    if (child.exitCode !== null) throw new Error(`floor server exited with ${child.exitCode}`);
    try {
      if ((await fetch(`${url}/noop`, { method: 'POST' })).ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error('floor server did not listen in 30 s');
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url,
    child,
    stop: async () => {
      if (child.exitCode !== null) return;
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
    },
  };
};

const row = (name: string, res: import('autocannon').Result, duplicates: number, cpu: CpuShare): Row => ({
  name,
  rps: res.requests.average,
  okRps: (res.requests.total - res.non2xx) / res.duration,
  p50: res.latency.p50,
  p99: res.latency.p99,
  non2xx: res.non2xx,
  statuses: Object.entries(res.statusCodeStats ?? {}).map(([code, s]) => `${code}: ${fmt((s as { count: number }).count)}`).join(', '),
  duplicates,
  cpu,
});

const { server, dataDir, freshDatabase, stop: stopServer } = await startBenchServer('ledger-floor-probe-');
// "bench" is this process: autocannon, or the COPY client of the ceiling.
const meter = (pid: number | null) => new CpuMeter({ postgres: () => postgresPids(dataDir), ...(pid === null ? {} : { service: () => [pid] }), bench: () => [process.pid] });
const deliveries = simulatedDeliveries('bench-live', Math.max(20_000, DURATION * 6000), 'live');
const noopBody = deliveries.find((d) => d.contentType.includes('json'))!.body;

const driveFloor = async (url: string, seconds: number, cursor: { i: number }) => {
  let duplicates = 0;
  const res = await runAutocannon({
    url,
    connections: CONNECTIONS,
    duration: seconds,
    requests: [
      {
        setupRequest: (req) => {
          const d: Delivery = deliveries[cursor.i++ % deliveries.length]!;
          return { ...req, method: 'POST', path: `/hook/${d.provider}`, headers: { 'content-type': d.contentType, 'x-floor-signature': floorSignature(d.body, Math.floor(Date.now() / 1000)) }, body: d.body };
        },
        onResponse: (_status, body) => {
          if (body.includes('"duplicate":true')) duplicates += 1;
        },
      },
    ],
  });
  return { res, duplicates };
};
const noop = (url: string, seconds: number) =>
  runAutocannon({ url: `${url}/noop`, connections: CONNECTIONS, method: 'POST', headers: { 'content-type': 'application/json' }, body: noopBody, duration: seconds });

const live: Row[] = [];
const checks: string[] = [];
const imports: { name: string; rowsPerSec: number; seconds: number; stored: number; cpu: CpuShare | null; note: string }[] = [];
try {
  // The service, as bench:ingest runs it (its own process, service defaults, an empty database).
  const serviceDb = await freshDatabase('floor_service');
  // LEDGER_MAX_REQUESTS_PER_SOCKET=0: past its default cap (1,000 requests on a keep-alive socket) Node answers 503
  // to whatever autocannon keeps sending on it, and a no-I/O rate counted with those is a rate of refusals.
  const service = await startService({ ...BENCH_SECRETS, LEDGER_API_KEYS: API_KEY, DATABASE_URL: serviceDb, LEDGER_MAX_REQUESTS_PER_SOCKET: '0' });
  try {
    const noopOpts = { url: `${service.url}/internal/noop`, connections: CONNECTIONS, method: 'POST' as const, headers: { 'content-type': 'application/json' }, body: noopBody };
    await runAutocannon({ ...noopOpts, duration: 2 });
    let m = meter(service.child.pid!);
    const n = await runAutocannon({ ...noopOpts, duration: DURATION });
    live.push(row('service: no-I/O route POST /internal/noop', n, 0, m.stop()));
    const cursor = { i: 0 };
    await driveWebhooks(service, deliveries, 2, CONNECTIONS, cursor);
    m = meter(service.child.pid!);
    const w = await driveWebhooks(service, deliveries, DURATION, CONNECTIONS, cursor);
    live.push(row('service: webhooks (group commit, defaults)', w.res, w.duplicates, m.stop()));
  } finally {
    await service.stop();
  }

  for (const mode of ['plain', 'chain'] as const) {
    const floor = await startFloor(await freshDatabase(`floor_${mode}`), mode);
    try {
      if (mode === 'plain') {
        await noop(floor.url, 2);
        const m = meter(floor.child.pid!);
        const n = await noop(floor.url, DURATION);
        live.push(row('floor: no-I/O route (Fastify alone)', n, 0, m.stop()));
      }
      const cursor = { i: 0 };
      await driveFloor(floor.url, 2, cursor);
      const m = meter(floor.child.pid!);
      const w = await driveFloor(floor.url, DURATION, cursor);
      live.push(row(mode === 'plain' ? 'floor (a): HMAC + parse + dedupe, group commit' : 'floor (b): (a) + hash chain + stream heads', w.res, w.duplicates, m.stop()));
    } finally {
      // Stopped first: requests still in flight when autocannon ends may still commit.
      await floor.stop();
    }
    if (mode === 'chain') checks.push(`live (b): ${await verifyChain(databaseUrl(server.url, 'floor_chain'))}`);
  }

  // Import: the service's, with the raw COPY ceiling (benchImport, as bench:ingest), then the floors on their own
  // databases (each already holds its live run's rows, as the service's does, to dedupe against).
  const importService = await startImportService(serviceDb);
  const cpuOf = new Map<string, CpuShare>();
  const imp = await benchImport(importService, serviceDb, IMPORT_ROWS, {
    begin: (name, pid) => {
      const m = meter(pid);
      return () => void cpuOf.set(name, m.stop());
    },
  }).finally(() => importService.stop());
  imports.push({ name: 'service: POST /v1/import', rowsPerSec: imp.rowsPerSec, seconds: imp.seconds, stored: imp.imported, cpu: cpuOf.get('import') ?? null, note: `${fmt(imp.duplicates)} duplicates` });
  imports.push({ name: 'raw COPY into a bare table (ceiling)', rowsPerSec: imp.copy.rowsPerSec, seconds: imp.copy.seconds, stored: IMPORT_ROWS, cpu: cpuOf.get('copy') ?? null, note: 'bench:ingest\'s ceiling, same rows; "bench" is its client' });
  const payload = Buffer.from(simulatedDeliveries('bench-import', IMPORT_ROWS, 'import').map(importLine).join('\n') + '\n');
  for (const mode of ['plain', 'chain'] as const) {
    const floor = await startFloor(databaseUrl(server.url, `floor_${mode}`), mode);
    try {
      const m = meter(floor.child.pid!);
      const started = performance.now();
      const res = await fetch(`${floor.url}/import?chain=${mode === 'chain' ? 1 : 0}`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body: payload });
      const seconds = (performance.now() - started) / 1000;
      const cpu = m.stop();
      const out = (await res.json()) as { rows: number; stored: number; duplicates: number };
      if (res.status !== 200 || out.rows !== IMPORT_ROWS) throw new Error(`floor import (${mode}) answered ${res.status}: ${JSON.stringify(out)}`);
      imports.push({
        name: mode === 'plain' ? 'floor (c): COPY to staging + INSERT … SELECT ON CONFLICT per chunk' : 'floor (c+chain): the same through the hash chain',
        rowsPerSec: IMPORT_ROWS / seconds, seconds, stored: out.stored, cpu, note: `${fmt(out.duplicates)} duplicates`,
      });
    } finally {
      await floor.stop();
    }
    if (mode === 'chain') checks.push(`import (c+chain): ${await verifyChain(databaseUrl(server.url, 'floor_chain'))}`);
  }
} finally {
  await stopServer();
}

const svcNoop = live[0]!;
const floorNoop = live.find((r) => r.name.startsWith('floor: no-I/O'))!;
const copyRate = imports[1]!.rowsPerSec;
const lines: string[] = [];
const out = (l = '') => {
  lines.push(l);
  console.log(l);
};
out(`Floor of the ingest and import targets (${CONNECTIONS} connections, ${DURATION} s per run, embedded PostgreSQL, fsync on, synchronous_commit on), ${new Date().toISOString()}`);
out('');
/** CPU per answer (or row) of the serving process, PostgreSQL and the load generator or client. */
const costs = (cpu: CpuShare, perSec: number) => {
  const svc = usPer(cpu, 'service', perSec);
  const pg = usPer(cpu, 'postgres', perSec);
  const bench = usPer(cpu, 'bench', perSec);
  return { svc, pg, bench, all: svc + pg + bench };
};
const noopCost = costs(svcNoop.cpu, svcNoop.okRps).all;
out('| live route | req/s (2xx) | p50 / p99 ms | non-2xx | CPU µs per 2xx answer: serving process + PostgreSQL (+ load generator) | / service no-I/O, measured | / service no-I/O, by CPU cost |');
out('| --- | --- | --- | --- | --- | --- | --- |');
for (const r of live) {
  const c = costs(r.cpu, r.okRps);
  out(`| ${r.name} | ${fmt(r.okRps)} | ${r.p50} / ${r.p99} | ${fmt(r.non2xx)}${r.non2xx ? ` (${r.statuses})` : ''} | ${fmt(c.svc)} + ${fmt(c.pg)} = ${fmt(c.svc + c.pg)} (+ ${fmt(c.bench)}) | ${fmt((r.okRps / svcNoop.okRps) * 100, 1)} % | ${fmt((noopCost / c.all) * 100, 1)} % |`);
}
out(`(service no-I/O route counting every answer: ${fmt(svcNoop.rps)} req/s; Fastify alone answers ${fmt(floorNoop.okRps)} req/s. "By CPU cost": the no-I/O request's CPU, load generator included, over this route's, which is the ratio of the rates on two cores that these three processes saturate; the machine's other load during the runs: ${live.map((r) => fmt(r.cpu.otherCores, 2)).join(', ')} cores)`);
out('');
const copyCost = costs(imports[1]!.cpu!, copyRate).all;
out('| import path | rows/s | s | stored | CPU µs per row: serving process + PostgreSQL (+ client) | / raw COPY, measured | / raw COPY, by CPU cost | note |');
out('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const r of imports) {
  const c = r.cpu ? costs(r.cpu, r.rowsPerSec) : null;
  out(`| ${r.name} | ${fmt(r.rowsPerSec)} | ${fmt(r.seconds, 1)} | ${fmt(r.stored)} | ${c ? `${fmt(c.svc)} + ${fmt(c.pg)} = ${fmt(c.svc + c.pg)} (+ ${fmt(c.bench)})` : '—'} | ${fmt((r.rowsPerSec / copyRate) * 100, 1)} % | ${c ? `${fmt((copyCost / c.all) * 100, 1)} %` : '—'} | ${r.note} |`);
}
out(`(the machine's other load during the imports: ${imports.map((r) => (r.cpu ? fmt(r.cpu.otherCores, 2) : '—')).join(', ')} cores)`);
out('');
for (const c of checks) out(c);
await mkdir('bench/tmp', { recursive: true });
await writeFile('bench/tmp/floor.json', JSON.stringify({ date: new Date().toISOString(), durationSec: DURATION, importRows: IMPORT_ROWS, live, imports }, null, 2));
await writeFile('bench/tmp/floor.md', lines.join('\n') + '\n');
