import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@lib/testing';
import { createDatabase, type DatabaseHandle } from './database.js';
import { executeNamed } from './named-statements.js';

let tdb: TestDatabase;
let handle: DatabaseHandle;
beforeAll(async () => {
  tdb = await createTestDatabase(2);
  // One connection: every statement below runs on the session whose prepared statements are inspected.
  handle = createDatabase(tdb.url, 1);
});
afterAll(async () => {
  await handle.db.destroy();
  await tdb.drop();
});

/** The statements prepared on the pool's one session (pg_prepared_statements is per session). */
const prepared = async () =>
  (await sql<{ name: string; statement: string; generic_plans: string; custom_plans: string }>`
    SELECT name, statement, generic_plans::text, custom_plans::text FROM pg_prepared_statements ORDER BY name`.execute(handle.db)).rows;

describe('executeNamed', () => {
  it('prepares a registered text once per connection and runs it with each call’s values; other statements stay unnamed', async () => {
    const square = (n: number) => executeNamed(handle.db, sql<{ sq: number }>`SELECT ${n}::int * ${n}::int AS sq /* named-statements spec */`);
    expect((await square(3)).rows[0]!.sq).toBe(9);
    expect((await square(12)).rows[0]!.sq).toBe(144);
    await sql`SELECT ${1}::int AS plain /* named-statements spec */`.execute(handle.db);
    const mine = (await prepared()).filter((p) => p.statement.includes('named-statements spec'));
    expect(mine).toHaveLength(1);
    expect(mine[0]!.name).toMatch(/^ledger_[0-9a-f]{24}$/);
    expect(Number(mine[0]!.generic_plans) + Number(mine[0]!.custom_plans)).toBe(2);
  });

  it('works inside a transaction, and a statement that fails on its values neither breaks the name nor the next call', async () => {
    const divide = (trx: Parameters<typeof executeNamed>[0], d: number) =>
      executeNamed(trx, sql<{ q: number }>`SELECT 10 / ${d}::int AS q /* named-statements spec, division */`);
    const failed = await handle.db
      .transaction()
      .execute(async (trx) => divide(trx, 0))
      .then(() => null, (err: unknown) => err as { code?: string });
    expect(failed?.code).toBe('22012');
    const q = await handle.db.transaction().execute(async (trx) => (await divide(trx, 5)).rows[0]!.q);
    expect(q).toBe(2);
  });

  it('a text that does not parse is not left half-prepared: the corrected call after it runs', async () => {
    const bad = await executeNamed(handle.db, sql`SELECT * FROM no_such_table_for_named_statements WHERE x = ${1}`).then(() => null, (e: unknown) => e as { code?: string });
    expect(bad?.code).toBe('42P01');
    await sql`CREATE TABLE no_such_table_for_named_statements (x int)`.execute(tdb.db);
    const ok = await executeNamed(handle.db, sql<{ n: string }>`SELECT count(*)::text AS n FROM no_such_table_for_named_statements WHERE x = ${1}`);
    expect(ok.rows[0]!.n).toBe('0');
  });
});
