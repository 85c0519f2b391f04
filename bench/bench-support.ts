import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import autocannon from 'autocannon';
import * as hdr from 'hdr-histogram-js';
import pg from 'pg';
import { freePort, startEmbeddedPostgres } from '../libs/db/src/embedded-postgres.js';

/** The secrets of the test suite (test/support/test-app.ts): the simulator signs with them, the service checks them. */
export const BENCH_SECRETS = {
  FREECLIMB_SIGNING_SECRET: 'sigsec_ead6d3b6904196c60835d039e91b3341c77a7793',
  JAMBONZ_WEBHOOK_SECRET: 'whsec_example_4f2a',
  TWILIO_AUTH_TOKEN: 'example_auth_token',
  RESTCOMM_WEBHOOK_TOKEN: 'rc-token-0123456789',
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
/**
 * The environment the Dockerfile gives the service beyond its configuration, so that a bench measures the process as
 * it is deployed: glibc's malloc limited to two arenas (see the Dockerfile). BENCH_GLIBC_DEFAULTS=1 leaves glibc's own
 * choice (one arena per thread, up to 8 per core), for a side-by-side run with what the benches measured before.
 */
export const DEPLOYED_ENV: Record<string, string> = process.env.BENCH_GLIBC_DEFAULTS === '1' ? {} : { MALLOC_ARENA_MAX: '2' };

/** `cwd`: another built checkout to run instead of this one (bench/console.compare.ts runs the old and the new side by side). */
export const startService = async (env: Record<string, string>, nodeArgs: string[] = [], cwd = process.cwd()): Promise<RunningService> => {
  const dataDir = await mkdtemp(join(tmpdir(), 'ledger-bench-'));
  const port = await freePort();
  const url = `http://127.0.0.1:${port}`;
  const child = spawn(process.execPath, [...nodeArgs, 'dist/apps/ledger/src/main.js'], {
    cwd,
    env: { ...DEPLOYED_ENV, ...process.env, LEDGER_DATA_DIR: dataDir, PORT: String(port), HOST: '127.0.0.1', LOG_LEVEL: process.env.SERVICE_LOG_LEVEL ?? 'warn', LEDGER_BENCH_ROUTES: '1', LEDGER_PUBLIC_URL: url, ...env },
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

/**
 * The `q`-quantile (0..1) of latencies in milliseconds, from an HDR histogram of microseconds with 3 significant
 * digits (the figure is at most 0.1 % above the exact order statistic, and the samples need no sorting).
 */
export const percentile = (ms: readonly number[], q: number): number => {
  const h = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 2, numberOfSignificantValueDigits: 3, autoResize: true });
  for (const x of ms) h.recordValue(Math.max(1, Math.round(x * 1000)));
  return h.getValueAtPercentile(q * 100) / 1000;
};

export const fmt = (n: number, digits = 0) => n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });

export const isMain = (metaUrl: string) => metaUrl === `file://${process.argv[1]}`;

/** utime + stime of one process, in clock ticks (100 per second on Linux), and its parent. */
const procStat = (pid: number): { ticks: number; ppid: number } | null => {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { ticks: Number(f[11]) + Number(f[12]), ppid: Number(f[1]) };
  } catch {
    return null;
  }
};

const machineTicks = (): { busy: number; total: number; steal: number } => {
  const [, ...v] = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0]!.trim().split(/\s+/);
  const n = v.map(Number);
  const total = n.slice(0, 8).reduce((a, b) => a + b, 0);
  return { busy: total - n[3]! - n[4]!, total, steal: n[7] ?? 0 };
};

/** A PostgreSQL server's processes: the postmaster and its children (backends, walwriter, checkpointer...). */
export const postgresPids = (dataDir: string): number[] => {
  const postmaster = Number(readFileSync(join(dataDir, 'pg', 'postmaster.pid'), 'utf8').split('\n')[0]);
  const pids = [postmaster];
  for (const name of readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    if (procStat(Number(name))?.ppid === postmaster) pids.push(Number(name));
  }
  return pids;
};

export interface CpuShare {
  wallSec: number;
  /** Per group, CPU seconds over wall seconds: 1.0 is one core busy all along (the machine has os.cpus().length). */
  cores: Record<string, number>;
  /** Busy cores of the whole machine, and the part of it outside the groups (other users of the box). */
  machineBusyCores: number;
  otherCores: number;
  stealPct: number;
}

/**
 * Where the CPU went during a phase, from /proc: the poor man's profile that runs in the same run, on the same
 * noisy machine. Sampled every 200 ms so that processes which exit before the end (the rebuild CLI, its backends)
 * keep their last reading; only what a process burns in its last 200 ms before exiting is lost.
 */
export class CpuMeter {
  private readonly first = new Map<number, number>();
  private readonly last = new Map<number, { group: string; ticks: number }>();
  private readonly startMachine = machineTicks();
  private readonly started = performance.now();
  private readonly timer: NodeJS.Timeout;
  constructor(private readonly groups: Record<string, () => number[]>) {
    for (const pids of Object.values(groups)) for (const pid of pids()) this.first.set(pid, procStat(pid)?.ticks ?? 0);
    this.timer = setInterval(() => this.sample(), 200);
    this.timer.unref();
  }
  private sample(): void {
    for (const [group, pids] of Object.entries(this.groups)) {
      let list: number[];
      try {
        list = pids();
      } catch {
        continue;
      }
      for (const pid of list) {
        const t = procStat(pid)?.ticks;
        if (t === undefined) continue;
        // A process born during the phase counts from zero.
        if (!this.first.has(pid)) this.first.set(pid, 0);
        this.last.set(pid, { group, ticks: t });
      }
    }
  }
  stop(): CpuShare {
    this.sample();
    clearInterval(this.timer);
    const wallSec = (performance.now() - this.started) / 1000;
    const m = machineTicks();
    const cores: Record<string, number> = Object.fromEntries(Object.keys(this.groups).map((g) => [g, 0]));
    for (const [pid, { group, ticks }] of this.last) cores[group]! += (ticks - (this.first.get(pid) ?? 0)) / 100 / wallSec;
    const ours = Object.values(cores).reduce((a, b) => a + b, 0);
    const totalDelta = m.total - this.startMachine.total;
    const machineBusyCores = ((m.busy - this.startMachine.busy) / Math.max(1, totalDelta)) * cpus().length;
    return { wallSec, cores, machineBusyCores, otherCores: Math.max(0, machineBusyCores - ours), stealPct: ((m.steal - this.startMachine.steal) / Math.max(1, totalDelta)) * 100 };
  }
}

/** Hook around each measured phase (run-all records CPU shares and load there); the standalone benches pass none. */
export interface PhaseProbe {
  begin(name: string, servicePid: number | null): () => void;
}
export const noProbe: PhaseProbe = { begin: () => () => undefined };

/** Sum and count of a Prometheus histogram or summary, from the service's /metrics text. */
export const scrapeHistogram = async (base: string, apiKey: string, name: string): Promise<{ sum: number; count: number }> => {
  const text = await (await fetch(`${base}/metrics`, { headers: { authorization: `Bearer ${apiKey}` } })).text();
  const value = (suffix: string) =>
    text
      .split('\n')
      .filter((l) => l.startsWith(`${name}_${suffix}`))
      .reduce((s, l) => s + Number(l.split(' ').at(-1)), 0);
  return { sum: value('sum'), count: value('count') };
};

/** One embedded PostgreSQL for a benchmark run, with an admin connection that hands out empty databases. */
export const startBenchServer = async (prefix: string, flags: string[] = []) => {
  const dataDir = await mkdtemp(join(tmpdir(), prefix));
  const server = await startEmbeddedPostgres({ dataDir, flags });
  const admin = new pg.Client({ connectionString: server.url });
  await admin.connect();
  const freshDatabase = async (name: string) => {
    await admin.query(`DROP DATABASE IF EXISTS ${name}`);
    await admin.query(`CREATE DATABASE ${name}`);
    return databaseUrl(server.url, name);
  };
  const stop = async () => {
    await admin.end();
    await server.stop();
    await rm(dataDir, { recursive: true, force: true });
  };
  return { dataDir, server, admin, freshDatabase, stop };
};

/**
 * The projector's live batches so far, from a running service's /metrics: how many, the events they applied and
 * their summed transaction time (NaN where a build has no `ledger_projection_batch_seconds`, or the projector is off).
 * Fewer, larger batches cost less per event (each has its lock, checkpoint and commit).
 */
export const projectorBatches = async (url: string, apiKey: string): Promise<{ batches: number; events: number; seconds: number }> => {
  const text = await (await fetch(`${url}/metrics`, { headers: { authorization: `Bearer ${apiKey}` } })).text();
  const value = (series: string) => {
    const line = text.split('\n').find((l) => l.startsWith(`${series} `));
    return line === undefined ? Number.NaN : Number(line.slice(series.length + 1));
  };
  return {
    batches: value('ledger_projection_batch_seconds_count{projection="call_legs"}'),
    events: value('ledger_projection_events_total{projection="call_legs"}'),
    seconds: value('ledger_projection_batch_seconds_sum{projection="call_legs"}'),
  };
};
