import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@lib/testing';
import { createDatabase, PREPARED, type DatabaseHandle } from './database.js';
import { isConnectionError } from './postgres-errors.js';

let tdb: TestDatabase;
let handle: DatabaseHandle;
beforeAll(async () => {
  tdb = await createTestDatabase(2);
  handle = createDatabase(tdb.url, 2);
});
afterAll(async () => {
  await handle.db.destroy();
  await tdb.drop();
});

describe('createDatabase', () => {
  it('survives the server dropping a checked-out client between two statements (no unhandled error event)', async () => {
    const client = await handle.pool.connect();
    const { rows } = await client.query<{ pid: number }>('SELECT pg_backend_pid() AS pid');
    const ended = new Promise<void>((resolve) => client.once('end', () => resolve()));
    await sql`SELECT pg_terminate_backend(${rows[0]!.pid})`.execute(tdb.db);
    // Without a listener for the lifetime of the client, this 'error' event would have killed the process.
    await ended;
    const err = await client.query('SELECT 1').then(() => null, (e: unknown) => e);
    expect(isConnectionError(err)).toBe(true);
    client.release(err as Error);
    expect((await sql<{ one: number }>`SELECT 1 AS one`.execute(handle.db)).rows[0]!.one).toBe(1);
  });

  it('prepares a statement marked PREPARED once per session, and sends every other one unnamed', async () => {
    const one = createDatabase(tdb.url, 1);
    try {
      const prepared = () => sql<{ n: number }>`${sql.raw(PREPARED)} SELECT ${41}::int + 1 AS n`.execute(one.db);
      expect((await prepared()).rows[0]!.n).toBe(42);
      expect((await prepared()).rows[0]!.n).toBe(42);
      await sql`SELECT ${1}::int AS n`.execute(one.db);
      const { rows } = await sql<{ name: string; statement: string }>`SELECT name, statement FROM pg_prepared_statements`.execute(one.db);
      expect(rows).toHaveLength(1);
      expect(rows[0]!.name).toMatch(/^ledger_[0-9a-f]{24}$/);
      expect(rows[0]!.statement.startsWith(PREPARED)).toBe(true);
    } finally {
      await one.db.destroy();
    }
  });
});
