import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@lib/testing';
import { createDatabase, type DatabaseHandle } from './database.js';
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
});
