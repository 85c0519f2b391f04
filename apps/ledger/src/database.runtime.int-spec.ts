import { Logger } from '@nestjs/common';
import { sql, type Kysely } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@lib/config';
import { createTestDatabase, type TestDatabase } from '@lib/testing';
import { openDatabase } from './database.runtime.js';

/** The service's connection setup against an external server, in both of its modes. */
let tdb: TestDatabase;
beforeAll(async () => {
  // The single-role warning is expected here; the test output need not carry it.
  Logger.overrideLogger(false);
  tdb = await createTestDatabase(2);
});
afterAll(async () => tdb?.drop());

const currentUser = async (db: Kysely<any>) => (await sql<{ u: string }>`SELECT current_user AS u`.execute(db)).rows[0]!.u;
const setting = async (db: Kysely<any>, name: string) => (await sql<{ v: string }>`SELECT current_setting(${name}) AS v`.execute(db)).rows[0]!.v;

describe('openDatabase', () => {
  it('with LEDGER_DATABASE_OWNER_URL: migrates as the owner, serves requests as ledger_app with the configured timeouts, projects as ledger_projector', async () => {
    const config = loadConfig({
      DATABASE_URL: tdb.appUrl,
      LEDGER_DATABASE_OWNER_URL: tdb.url,
      LEDGER_PROJECTOR_DATABASE_URL: tdb.projectorUrl,
      LEDGER_DB_STATEMENT_TIMEOUT_MS: '7000',
      LEDGER_DB_LOCK_TIMEOUT_MS: '3000',
      LOG_LEVEL: 'silent',
    });
    const runtime = await openDatabase(config);
    try {
      await runtime.ready;
      expect(runtime.mode).toBe('roles');
      expect(runtime.schema.migrated).toBe(true);
      expect(await currentUser(runtime.db)).toBe('ledger_app');
      expect(await currentUser(runtime.projector.db)).toBe('ledger_projector');
      expect(await setting(runtime.db, 'statement_timeout')).toBe('7s');
      expect(await setting(runtime.db, 'lock_timeout')).toBe('3s');
      expect(await setting(runtime.db, 'idle_in_transaction_session_timeout')).toBe('30s');
      // The projector's rebuilds may run long; only its lock and idle waits are bounded.
      expect(await setting(runtime.projector.db, 'statement_timeout')).toBe('0');
      expect(runtime.replica).toBeNull();
    } finally {
      await runtime.close();
    }
  });

  it('with DATABASE_READ_URL: a pool of its own for the query routes, as the role its URL names, with the request timeouts', async () => {
    // The test server stands for the standby here: the pool's setup is under test, not replication
    // (test/chaos/read-replica.chaos-spec.ts has a real standby).
    const config = loadConfig({
      DATABASE_URL: tdb.appUrl,
      LEDGER_DATABASE_OWNER_URL: tdb.url,
      LEDGER_PROJECTOR_DATABASE_URL: tdb.projectorUrl,
      DATABASE_READ_URL: tdb.appUrl,
      LEDGER_DB_STATEMENT_TIMEOUT_MS: '7000',
      LOG_LEVEL: 'silent',
    });
    const runtime = await openDatabase(config);
    try {
      await runtime.ready;
      expect(runtime.replica!.url).toBe(tdb.appUrl);
      expect(await currentUser(runtime.replica!.db)).toBe('ledger_app');
      expect(await setting(runtime.replica!.db, 'statement_timeout')).toBe('7s');
      expect(await setting(runtime.replica!.db, 'application_name')).toBe('call-ledger-read');
    } finally {
      await runtime.close();
    }
  });

  it('with DATABASE_URL alone: one role for everything, as before', async () => {
    const runtime = await openDatabase(loadConfig({ DATABASE_URL: tdb.url, LOG_LEVEL: 'silent' }));
    try {
      await runtime.ready;
      expect(runtime.mode).toBe('single');
      expect(await currentUser(runtime.db)).toBe(await currentUser(tdb.db));
      expect(runtime.projector.url).toBe(runtime.url);
    } finally {
      // Idempotent: the shutdown hook and the signal handler may both call it.
      await Promise.all([runtime.close(), runtime.close()]);
      await runtime.close();
    }
  });

  it('refuses an owner URL without the projector role', () => {
    expect(() => loadConfig({ DATABASE_URL: tdb.appUrl, LEDGER_DATABASE_OWNER_URL: tdb.url })).toThrow(/LEDGER_PROJECTOR_DATABASE_URL/);
  });
});
