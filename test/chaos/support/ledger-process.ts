import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { freePort } from '@lib/db';
import { API_KEY, SECRETS } from '../../support/test-app.js';

const ROOT = join(import.meta.dirname, '..', '..', '..');
const MAIN = join(ROOT, 'dist', 'apps', 'ledger', 'src', 'main.js');
export const PUBLIC_URL = 'https://ledger.example.com';

export interface LedgerProcess {
  url: string;
  pid: number;
  child: ChildProcess;
  /** Everything the process wrote to stdout and stderr. */
  output(): string;
  exited: Promise<number | null>;
  /** Resident set size in bytes (Linux /proc), null once the process is gone. */
  rss(): number | null;
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Throws, with the process's last output, if it has exited: for use inside waitUntil conditions. */
  assertAlive(): void;
}

/** Polls `check` until it holds, failing with `what` after `timeoutMs` (or at once when `check` throws): a condition, never a fixed sleep. */
export const waitUntil = async (what: string, check: () => Promise<boolean> | boolean, timeoutMs = 60_000, everyMs = 100): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
};

export const healthStatus = async (url: string, timeoutMs = 5_000): Promise<number | null> => {
  try {
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(timeoutMs) });
    await res.arrayBuffer();
    return res.status;
  } catch {
    return null;
  }
};

/** Starts `node dist/apps/ledger/src/main.js` on a free port with the test secrets, and waits until /health is 200. */
export const startLedger = async (env: Record<string, string>, options: { waitReady?: boolean } = {}): Promise<LedgerProcess> => {
  const port = await freePort();
  const chunks: string[] = [];
  const child = spawn(process.execPath, [MAIN], {
    cwd: ROOT,
    env: {
      PATH: process.env.PATH ?? '',
      PORT: String(port),
      HOST: '127.0.0.1',
      LEDGER_API_KEYS: API_KEY,
      LEDGER_PUBLIC_URL: PUBLIC_URL,
      LOG_LEVEL: 'info',
      ...SECRETS,
      ...env,
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => chunks.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => chunks.push(d.toString()));
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const url = `http://127.0.0.1:${port}`;
  const proc: LedgerProcess = {
    url,
    pid: child.pid!,
    child,
    output: () => chunks.join(''),
    exited,
    rss: () => {
      try {
        const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, 'utf8'));
        return m ? Number(m[1]) * 1024 : null;
      } catch {
        return null;
      }
    },
    assertAlive: () => {
      if (child.exitCode !== null || child.signalCode !== null) {
        throw new Error(`the ledger exited (${child.exitCode ?? child.signalCode}):\n${chunks.join('').slice(-4000)}`);
      }
    },
    stop: async (signal = 'SIGTERM') => {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
  if (options.waitReady !== false) {
    let gone = false;
    void exited.then(() => (gone = true));
    const deadline = Date.now() + 60_000;
    while ((await healthStatus(url)) !== 200) {
      if (gone || Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`the ledger on ${url} ${gone ? 'exited' : 'was not ready after 60 s'}:\n${proc.output().slice(-4000)}`);
      }
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return proc;
};
