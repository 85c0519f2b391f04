import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePort } from '../libs/db/src/embedded-postgres.js';

export interface RunningService {
  url: string;
  child: ChildProcess;
  dataDir: string;
  peakRssMb(): number;
  stop(): Promise<void>;
}

/** Starts the built service as its own process on a fresh embedded PostgreSQL and waits for /health. */
export const startService = async (env: Record<string, string>): Promise<RunningService> => {
  const dataDir = await mkdtemp(join(tmpdir(), 'ledger-bench-'));
  const port = await freePort();
  const child = spawn(process.execPath, ['dist/apps/ledger/src/main.js'], {
    env: { ...process.env, LEDGER_DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', LEDGER_BENCH_ROUTES: '1', ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
  const url = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 60_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`service exited with ${child.exitCode}`);
    try {
      const r = await fetch(`${url}/health`);
      if (r.ok) break;
    } catch {
      /* not listening yet */
    }
    if (Date.now() > deadline) throw new Error('service did not become healthy in 60 s');
    await new Promise((r) => setTimeout(r, 200));
  }
  let peak = 0;
  const sampler = setInterval(() => {
    try {
      const status = require_status(child.pid!);
      peak = Math.max(peak, status);
    } catch {
      /* process gone */
    }
  }, 100);
  return {
    url,
    child,
    dataDir,
    peakRssMb: () => peak / 1024,
    stop: async () => {
      clearInterval(sampler);
      child.kill('SIGTERM');
      await new Promise((r) => child.once('exit', r));
      await rm(dataDir, { recursive: true, force: true });
    },
  };
};

import { readFileSync } from 'node:fs';
/** VmHWM would only give the lifetime peak; sampling VmRSS lets each phase report its own. */
const require_status = (pid: number): number => {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) : 0;
};

export const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
