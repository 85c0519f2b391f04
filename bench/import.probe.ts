/**
 * `node dist/bench/import.probe.js` (after `nest build ledger`): the import section of the ingest benchmark alone
 * (POST /v1/import of simulated history, then a raw COPY of the same rows), on a fresh embedded PostgreSQL and a
 * fresh service. ROWS (default 100,000) and RUNS (default 1, each on a fresh database) set the size. Used to
 * compare two builds side by side in the same minutes (run it from each checkout).
 */
import { benchImport } from './ingest.bench.js';
import { BENCH_SECRETS, databaseUrl, fmt, startBenchServer, startService } from './bench-support.js';

const rows = Number(process.env.ROWS ?? 100_000);
const runs = Number(process.env.RUNS ?? 1);
const { server, freshDatabase, stop } = await startBenchServer('ledger-import-probe-');
try {
  for (let run = 1; run <= runs; run += 1) {
    const name = `import_probe_${run}`;
    // PROF=<dir>: a V8 CPU profile of the service, written when it stops. PROJECTOR=off: without the in-process projector.
    const service = await startService(
      { ...BENCH_SECRETS, LEDGER_API_KEYS: 'bench-key-0123456789', DATABASE_URL: await freshDatabase(name), ...(process.env.PROJECTOR ? { LEDGER_PROJECTOR: process.env.PROJECTOR } : {}) },
      process.env.PROF ? ['--cpu-prof', `--cpu-prof-dir=${process.env.PROF}`] : [],
    );
    try {
      const f = await benchImport(service, databaseUrl(server.url, name), rows);
      console.log(
        `run ${run}: import ${fmt(f.rowsPerSec)} rows/s (${fmt(f.seconds, 2)} s, ${fmt(f.imported)} imported, ${fmt(f.duplicates)} duplicates); ` +
          `raw COPY ${fmt(f.copy.rowsPerSec)} rows/s; ratio ${fmt(f.ratio * 100, 1)} %; peak RSS ${fmt(f.peakRssMb)} MB`,
      );
    } finally {
      await service.stop();
    }
  }
} finally {
  await stop();
}
