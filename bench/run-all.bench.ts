/**
 * `npm run bench`: every benchmark in one run on one embedded PostgreSQL, so that each compared pair is measured
 * minutes apart on the same machine state. Writes bench/results.json and BENCHMARKS.md (generated from it).
 * BENCH_SCALE=0.05 runs a quick, smaller version (its figures are not comparable to the targets' sizes).
 */
import { spawn, execFileSync } from 'node:child_process';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { cpus, loadavg, release, totalmem } from 'node:os';
import { join } from 'node:path';
import { sql } from 'kysely';
import { createDatabase, migrateToLatest } from '../libs/db/src/index.js';
import type { Provider } from '../libs/ledger/src/index.js';
import { CpuMeter, RssSampler, databaseUrl, fmt, postgresPids, startService, type CpuShare, type PhaseProbe, startBenchServer } from './bench-support.js';
import { benchImport, benchLiveIngest, startImportService, type ImportFigures, type LiveIngestFigures } from './ingest.bench.js';
import { benchPeer, type PeerFigures } from './peer.bench.js';
import { QUERY_API_KEY, assertEveryLegProjected, fillLegs, measureQueries, type RouteLatency } from './queries.bench.js';
import { appendTwentyLegTrees, measureConsole, type ConsoleLatency } from './console.bench.js';
import { computeFigures, renderMarkdown, type Results } from './report.js';
import { benchTee, type TeeFigures } from './tee.bench.js';

const SCALE = Number(process.env.BENCH_SCALE ?? 1);
const full = SCALE >= 1;
const sizes = {
  durationSec: Number(process.env.BENCH_DURATION ?? (full ? 10 : 4)),
  liveDeliveries: Math.max(10_000, Math.round(80_000 * SCALE)),
  importRows: Math.max(2_000, Math.round(100_000 * SCALE)),
  peerAppends: Math.max(1_000, Math.round(12_000 * SCALE)),
  legs: Math.max(5_000, Math.round(1_000_000 * SCALE)),
};

export interface PhaseRecord {
  name: string;
  /** Whose RSS was sampled: the service process, or this process when the store runs in it. */
  rssOf: 'service' | 'bench process' | 'projections CLI';
  peakRssMb: number;
  cpu: CpuShare;
  loadAvg1m: number;
}

const t0 = performance.now();
const startedAt = new Date();
const loadStart = loadavg();
const { dataDir, server, admin, freshDatabase, stop: stopServer } = await startBenchServer('ledger-bench-all-');

const phases: PhaseRecord[] = [];
/** Records each phase's CPU split (service / PostgreSQL / this process / everything else) and peak RSS. */
const probeFor = (pidOverride?: () => number | null, rssOf?: PhaseRecord['rssOf']): PhaseProbe => ({
  begin(name, servicePid) {
    const pid = pidOverride?.() ?? servicePid;
    const rss = new RssSampler(pid ?? process.pid);
    const groups: Record<string, () => number[]> = { postgres: () => postgresPids(dataDir), bench: () => [process.pid] };
    if (pid !== null) groups.service = () => [pid];
    const meter = new CpuMeter(groups);
    console.log(`-- ${name}`);
    return () => {
      const cpu = meter.stop();
      rss.stop();
      phases.push({ name, rssOf: rssOf ?? (pid !== null ? 'service' : 'bench process'), peakRssMb: rss.peakMb(), cpu, loadAvg1m: loadavg()[0]! });
    };
  },
});
const probe = probeFor();

const gitCommit = (() => {
  try {
    const head = execFileSync('git', ['rev-parse', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim().length > 0;
    return { commit: head, dirty };
  } catch {
    return { commit: 'unknown', dirty: false };
  }
})();

let live: LiveIngestFigures;
let imp: ImportFigures;
const peer: PeerFigures[] = [];
let rebuild: { events: number; seconds: number; eventsPerSec: number; peakRssMb: number; legs: number; fillSeconds: number; fillEventsPerSec: number };
let queries: RouteLatency[];
let queriesRssMb: number;
let tee: TeeFigures;
let consoleFigures: ConsoleLatency[];
let twenty: { provider: Provider; callId: string }[];
let pgVersion: string;
let durability: Record<string, string>;
try {
  pgVersion = (await admin.query<{ v: string }>("SELECT current_setting('server_version') AS v")).rows[0]!.v;
  durability = Object.fromEntries(
    (await admin.query<{ name: string; setting: string }>(`SELECT name, setting FROM pg_settings WHERE name IN ('fsync', 'synchronous_commit', 'wal_sync_method', 'full_page_writes', 'commit_delay', 'shared_buffers', 'max_wal_size') ORDER BY name`)).rows.map((r) => [r.name, r.setting]),
  );

  console.log(`\n== live ingest (${sizes.durationSec} s per run, 64 connections)`);
  const r = await benchLiveIngest({ freshDatabase, durationSec: sizes.durationSec, deliveries: sizes.liveDeliveries, probe });
  live = r.figures;
  console.log(`noop ${fmt(live.noop.rps)} req/s, group commit ${fmt(live.groupCommit.rps)} req/s, naive ${fmt(live.naive.rps)} req/s`);

  console.log(`\n== import (${fmt(sizes.importRows)} rows) and raw COPY`);
  // A fresh service process on the database live ingest filled: the import's RSS is its own.
  const importUrl = databaseUrl(server.url, 'bench_ingest');
  const importService = await startImportService(importUrl);
  try {
    imp = await benchImport(importService, importUrl, sizes.importRows, probe);
  } finally {
    await importService.stop();
  }
  console.log(`import ${fmt(imp.rowsPerSec)} rows/s, COPY ${fmt(imp.copy.rowsPerSec)} rows/s`);

  for (const appenders of [64, 8]) {
    console.log(`\n== peer: ${fmt(sizes.peerAppends)} appends, ${appenders} appenders`);
    const f = await benchPeer(freshDatabase, { appends: sizes.peerAppends, appenders, probe, dataDir });
    peer.push(f);
    console.log(`ledger ${fmt(f.ledger.appendsPerSec)} appends/s, emmett ${fmt(f.emmett.appendsPerSec)} appends/s`);
  }

  console.log(`\n== fill ${fmt(sizes.legs)} legs (rebuild and queries)`);
  const historyUrl = await freshDatabase('bench_history');
  const { db } = createDatabase(historyUrl, 8);
  let fill: Awaited<ReturnType<typeof fillLegs>>;
  try {
    await migrateToLatest(db);
    fill = await fillLegs(db, sizes.legs);
    // The console's call page is measured on 20-leg trees; they join the fill before the rebuild projects it.
    twenty = await appendTwentyLegTrees(db);
    const [{ n: events }] = (await sql<{ n: string }>`SELECT count(*)::text AS n FROM events`.execute(db)).rows as [{ n: string }];
    fill = { ...fill, events: Number(events), legs: fill.legs + twenty.length * 20 };
    // A store that is rebuilt has rows written long before: their hint bits set and the insert-triggered autovacuum
    // of its month partitions done. Right after a bulk fill of 2.7 M events (now two minutes) that work is still
    // due, and would run in the rebuild's reads and beside them (it took the rebuild from 40,766 to 27,698 events/s
    // once the fill got twice as fast): done here, as autovacuum would have, and not counted as the rebuild's.
    await sql`VACUUM (ANALYZE)`.execute(db);
  } finally {
    await db.destroy();
  }
  await admin.query('CHECKPOINT');

  console.log('\n== projection rebuild (npm run projections -- rebuild, as its own process)');
  // The CLI a deployment runs; its own process, so that its RSS is the rebuild's alone.
  const cli = spawn(process.execPath, ['dist/apps/ledger/src/projections.cli.js', 'rebuild'], {
    env: { ...process.env, DATABASE_URL: historyUrl, LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let out = '';
  cli.stdout.on('data', (b: Buffer) => (out += b.toString()));
  const cliPid = cli.pid!;
  const endRebuild = probeFor(() => cliPid, 'projections CLI').begin('rebuild', cliPid);
  const code = await new Promise<number>((resolve) => cli.once('exit', (c) => resolve(c ?? 1)));
  endRebuild();
  const m = /rebuilt all projections in ([\d.]+) s/.exec(out);
  if (code !== 0 || !m) throw new Error(`rebuild failed (${code}): ${out.slice(0, 500)}`);
  const seconds = Number(m[1]);
  rebuild = {
    events: fill.events,
    legs: fill.legs,
    seconds,
    eventsPerSec: fill.events / seconds,
    peakRssMb: phases.at(-1)!.peakRssMb,
    fillSeconds: fill.seconds,
    fillEventsPerSec: fill.events / fill.seconds,
  };
  console.log(`rebuild ${fmt(rebuild.eventsPerSec)} events/s over ${fmt(rebuild.events)} events`);

  console.log(`\n== queries at ${fmt(fill.legs)} legs`);
  const h = createDatabase(historyUrl, 2);
  // What autovacuum does after a while; without it the planner guesses the row counts of freshly filled tables.
  await sql`VACUUM ANALYZE`.execute(h.db);
  await assertEveryLegProjected(h.db);
  await h.db.destroy();
  const service = await startService({ DATABASE_URL: historyUrl, LEDGER_API_KEYS: QUERY_API_KEY });
  try {
    const end = probe.begin('queries', service.child.pid!);
    queries = await measureQueries(service.url, fill);
    end();
    queriesRssMb = phases.at(-1)!.peakRssMb;
    console.log(`\n== console in Chromium at ${fmt(fill.legs)} legs`);
    const endConsole = probe.begin('console', service.child.pid!);
    consoleFigures = (await measureConsole(service.url, QUERY_API_KEY, twenty)).map(({ times: _t, ...c }) => c);
    endConsole();
  } finally {
    await service.stop();
  }

  // Last, so that its open-loop load (a backlog, on an overloaded machine) cannot disturb the phases above.
  console.log(`\n== tee mode (${sizes.durationSec} s per route in alternating rounds, 200 calls/s, local stub app)`);
  // The fill and its VACUUM leave gigabytes of dirty pages that a spread checkpoint would write out during this
  // phase, on the disk its commits fsync to: written now, they are not counted as the tee's latency.
  // The earlier phases' databases (the million-leg fill above all) are dropped: autovacuum would otherwise still be
  // working through them here, on the cores and the disk the tee's commits share.
  for (const { datname } of (await admin.query<{ datname: string }>(`SELECT datname FROM pg_database WHERE datname LIKE 'bench\\_%'`)).rows) {
    await admin.query(`DROP DATABASE IF EXISTS "${datname}" WITH (FORCE)`);
  }
  await admin.query('CHECKPOINT');
  tee = await benchTee({ seconds: sizes.durationSec, env: { DATABASE_URL: await freshDatabase('bench_tee') }, probe });
  console.log(`direct p99 ${fmt(tee.direct.p99, 2)} ms, webhook p99 ${fmt(tee.webhook.p99, 2)} ms, tee p99 ${fmt(tee.tee.p99, 2)} ms: added p99 ${fmt(tee.addedP99, 2)} ms`);
  if (tee.thinking) console.log(`app thinking ${tee.thinking.appMs} ms: direct p99 ${fmt(tee.thinking.direct.p99, 2)} ms, tee p99 ${fmt(tee.thinking.tee.p99, 2)} ms: added p99 ${fmt(tee.thinking.addedP99, 2)} ms`);
} finally {
  await stopServer();
}

const results: Results = {
  date: startedAt.toISOString(),
  runSeconds: (performance.now() - t0) / 1000,
  command: SCALE === 1 ? 'npm run bench' : `BENCH_SCALE=${SCALE} npm run bench`,
  scale: SCALE,
  sizes,
  git: gitCommit,
  machine: {
    cpu: cpus()[0]?.model ?? 'unknown',
    cores: cpus().length,
    ramGb: Math.round((totalmem() / 1024 ** 3) * 10) / 10,
    kernel: release(),
    node: process.version,
    postgres: pgVersion,
    durability,
    loadAvgAtStart: loadStart.map((x) => Math.round(x * 100) / 100),
    loadAvgAtEnd: loadavg().map((x) => Math.round(x * 100) / 100),
  },
  live,
  import: imp,
  peer,
  rebuild,
  queries,
  queriesRssMb,
  tee,
  console: consoleFigures,
  phases,
  figures: [],
};
results.figures = computeFigures(results);
// A quick run must not overwrite the committed full-size report.
const outDir = full ? '.' : 'bench/tmp';
await mkdir(join(outDir, 'bench'), { recursive: true });
const jsonPath = full ? 'bench/results.json' : join(outDir, 'results.json');
const mdPath = join(outDir, 'BENCHMARKS.md');
await writeFile(jsonPath, JSON.stringify(results, null, 2) + '\n');
await writeFile(mdPath, renderMarkdown(results, await readFile('bench/profile-notes.md', 'utf8').catch(() => '')));
console.log(`\n${results.figures.map((f) => `${f.label}: ${f.display}${f.target ? ` (target ${f.target}: ${f.pass ? 'met' : 'MISSED'})` : ''}`).join('\n')}`);
console.log(`\nwrote ${jsonPath} and ${mdPath} in ${fmt(results.runSeconds / 60, 1)} min`);
