import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import { freePort } from '../libs/db/src/embedded-postgres.js';

/** The secrets of the test suite (test/support/test-app.ts): the simulator signs with them, the service checks them. */
export const BENCH_SECRETS = {
  FREECLIMB_SIGNING_SECRET: 'sigsec_ead6d3b6904196c60835d039e91b3341c77a7793',
  JAMBONZ_WEBHOOK_SECRET: 'whsec_example_4f2a',
  TWILIO_AUTH_TOKEN: 'example_auth_token',
  RESTCOMM_WEBHOOK_TOKEN: 'rc-token-1',
};
export const SIM_SECRETS = {
  freeclimb: BENCH_SECRETS.FREECLIMB_SIGNING_SECRET,
  jambonz: BENCH_SECRETS.JAMBONZ_WEBHOOK_SECRET,
  twilio: BENCH_SECRETS.TWILIO_AUTH_TOKEN,
  restcomm: BENCH_SECRETS.RESTCOMM_WEBHOOK_TOKEN,
};

/** VmHWM would only give the lifetime peak; sampling VmRSS lets each phase report its own. */
export const rssKb = (pid: number): number => {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  const m = /VmRSS:\s+(\d+) kB/.exec(status);
  return m ? Number(m[1]) : 0;
};

/** Peak RSS of one process, sampled every 100 ms; `reset()` starts a new phase. */
export class RssSampler {
  private peakKb = 0;
  private readonly timer: NodeJS.Timeout;
  constructor(private readonly pid: number) {
    this.timer = setInterval(() => this.sample(), 100);
    this.timer.unref();
  }
  sample(): void {
    try {
      this.peakKb = Math.max(this.peakKb, rssKb(this.pid));
    } catch {
      /* process gone */
    }
  }
  reset(): void {
    this.peakKb = 0;
    this.sample();
  }
  peakMb(): number {
    this.sample();
    return this.peakKb / 1024;
  }
  stop(): void {
    clearInterval(this.timer);
  }
}

export interface RunningService {
  url: string;
  child: ChildProcess;
  dataDir: string;
  rss: RssSampler;
  peakRssMb(): number;
  stop(): Promise<void>;
}

/**
 * Starts the built service as its own process and waits for /health: on a fresh embedded PostgreSQL of its own,
 * or on DATABASE_URL when given. LEDGER_PUBLIC_URL is its own URL, so that simulated Twilio signatures verify.
 */
export const startService = async (env: Record<string, string>): Promise<RunningService> => {
  const dataDir = await mkdtemp(join(tmpdir(), 'ledger-bench-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, ['dist/apps/ledger/src/main.js'], {
    env: { ...process.env, LEDGER_DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: 'warn', LEDGER_BENCH_ROUTES: '1', LEDGER_PUBLIC_URL: url, ...env },
    stdio: ['ignore', 'inherit', 'inherit'],
  });
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
  const rss = new RssSampler(child.pid!);
  return {
    url,
    child,
    dataDir,
    rss,
    peakRssMb: () => rss.peakMb(),
    stop: async () => {
      rss.stop();
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      await rm(dataDir, { recursive: true, force: true });
    },
  };
};

export const runAutocannon = (opts: autocannon.Options) =>
  new Promise<autocannon.Result>((resolve, reject) => autocannon(opts, (err, res) => (err ? reject(err) : resolve(res))));

/** The same server, another database: each phase starts from empty tables. */
export const databaseUrl = (serverUrl: string, name: string): string => {
  const u = new URL(serverUrl);
  u.pathname = `/${name}`;
  return u.toString();
};

export const percentile = (sorted: number[], p: number) => sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;

export const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

export const isMain = (metaUrl: string) => metaUrl === `file://${process.argv[1]}`;
