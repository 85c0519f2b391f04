/**
 * `node dist/bench/import.probe.js` (after `nest build ledger`): the import section of the ingest benchmark alone
 * (POST /v1/import of simulated history, then a raw COPY of the same rows), on a fresh embedded PostgreSQL and a
 * fresh service. ROWS (default 100,000) and RUNS (default 1, each on a fresh database) set the size. Used to
 * compare two builds side by side in the same minutes (run it from each checkout). Besides the rates it prints
 * the CPU per row of the service and of every PostgreSQL process (from /proc), which a shared machine moves far
 * less than the wall time.
 */
import pg from 'pg';
import { benchImport } from './ingest.bench.js';
import { BENCH_SECRETS, CpuMeter, databaseUrl, fmt, postgresPids, startBenchServer, startService, type CpuShare, type PhaseProbe } from './bench-support.js';

const rows = Number(process.env.ROWS ?? 100_000);
const runs = Number(process.env.RUNS ?? 1);
const PROJECTOR = process.env.PROJECTOR;
/** SERVICE_ENV='{"NAME":"value"}': more environment for the service only (e.g. glibc's malloc tunables). */
const serviceEnv = JSON.parse(process.env.SERVICE_ENV ?? '{}') as Record<string, string>;
const { server, dataDir, freshDatabase, stop } = await startBenchServer('ledger-import-probe-');
try {
  for (let run = 1; run <= runs; run += 1) {
    const name = `import_probe_${run}`;
    // PROF=<dir>: a V8 CPU profile of the service, written when it stops. PROJECTOR=off: without the in-process projector.
    // SERVICE_NODE_ARGS: more node flags for the service (e.g. --trace-gc).
    const service = await startService(
      { ...BENCH_SECRETS, LEDGER_API_KEYS: 'bench-key-0123456789', DATABASE_URL: await freshDatabase(name), ...(process.env.PROJECTOR ? { LEDGER_PROJECTOR: process.env.PROJECTOR } : {}), ...serviceEnv },
      [...(process.env.PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PROF}`] : []), ...(process.env.SERVICE_NODE_ARGS ?? '').split(' ').filter(Boolean)],
      // SERVICE_CWD=<another built checkout>: its service instead of this one's, to compare two builds alternately.
      process.env.SERVICE_CWD ?? process.cwd(),
    );
    const cpu = new Map<string, CpuShare>();
    const probe: PhaseProbe = {
      begin(phase, pid) {
        const meter = new CpuMeter({ postgres: () => postgresPids(dataDir), ...(pid === null ? {} : { service: () => [pid] }) });
        return () => void cpu.set(phase, meter.stop());
      },
    };
    try {
      // The in-process projector folds the import as it lands and may finish after the answer: a second client
      // samples its checkpoint against the store's head every 100 ms, for the time until it has caught up and the
      // service's peak RSS until then (the import's own peak stops at its answer, and the raw COPY runs meanwhile).
      const watcher = new pg.Client({ connectionString: databaseUrl(server.url, name) });
      await watcher.connect();
      const started = performance.now();
      let answeredAt = Number.POSITIVE_INFINITY;
      let caughtUpAt: number | null = null;
      let peakThroughCatchUp = 0;
      const samples: { at: number; behind: boolean }[] = [];
      const watch = (async () => {
        while (caughtUpAt === null && PROJECTOR !== 'off') {
          const at = performance.now();
          const r = await watcher.query<{ behind: boolean }>(
            `SELECT coalesce((SELECT min(last_position) FROM projection_checkpoints), 0) < coalesce((SELECT max(global_position) FROM events), 0) AS behind`,
          );
          peakThroughCatchUp = Math.max(peakThroughCatchUp, service.rss.peakMb());
          samples.push({ at, behind: r.rows[0]!.behind });
          caughtUpAt = samples.find((x) => x.at >= answeredAt && !x.behind)?.at ?? null;
          if (caughtUpAt === null) await new Promise((res) => setTimeout(res, 100));
        }
      })();
      const f = await benchImport(service, databaseUrl(server.url, name), rows, probe);
      answeredAt = started + f.seconds * 1000;
      await watch.finally(() => watcher.end());
      const caughtUpSec = caughtUpAt === null ? f.seconds : (caughtUpAt - started) / 1000;
      const usPerRow = (phase: string, group: string) => fmt((((cpu.get(phase)?.cores[group] ?? 0) * (cpu.get(phase)?.wallSec ?? 0)) / rows) * 1e6);
      console.log(
        `run ${run}: import ${fmt(f.rowsPerSec)} rows/s (${fmt(f.seconds, 2)} s, ${fmt(f.imported)} imported, ${fmt(f.duplicates)} duplicates); ` +
          `raw COPY ${fmt(f.copy.rowsPerSec)} rows/s; ratio ${fmt(f.ratio * 100, 1)} %; service RSS ${fmt(f.startRssMb ?? 0)} MB before, peak ${fmt(f.peakRssMb)} MB; ` +
          `projections caught up ${fmt(caughtUpSec, 1)} s after the upload began (peak RSS until then ${fmt(Math.max(peakThroughCatchUp, f.peakRssMb))} MB); ` +
          `CPU per row: service ${usPerRow('import', 'service')} µs, PostgreSQL ${usPerRow('import', 'postgres')} µs (raw COPY: PostgreSQL ${usPerRow('copy', 'postgres')} µs); ` +
          `machine busy ${fmt(cpu.get('import')?.machineBusyCores ?? 0, 2)} cores during the import`,
      );
    } finally {
      await service.stop();
    }
  }
} finally {
  await stop();
}
