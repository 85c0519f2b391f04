import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, jambonzRecord, type TestDatabase } from '@lib/testing';
import * as genericPlans from '../../../migrations/20261203000400_generic_append_plans.js';
import { EventStoreRepository } from './event-store.repository.js';

/** Migration 20261203000400: ledger_append plans its statements once per session (generic plans). */
let tdb: TestDatabase;
beforeAll(async () => {
  tdb = await createTestDatabase();
});
afterAll(async () => tdb.drop());

const settings = async () => {
  const { rows } = await sql<{ fn: string; config: string[] | null; definer: boolean }>`
    SELECT p.oid::regprocedure::text AS fn, p.proconfig AS config, p.prosecdef AS definer FROM pg_proc p
    WHERE p.proname = 'ledger_append' AND p.pronamespace = current_schema()::regnamespace ORDER BY 1`.execute(tdb.db);
  return rows;
};

describe('generic plans for ledger_append (migration 20261203000400)', () => {
  it('sets plan_cache_mode on every ledger_append, beside the pinned search_path of SECURITY DEFINER', async () => {
    const rows = await settings();
    expect(rows.length).toBeGreaterThan(0);
    for (const r of rows) {
      expect(r.config).toContain('plan_cache_mode=force_generic_plan');
      expect(r.config?.some((c) => c.startsWith('search_path='))).toBe(true);
      expect(r.definer).toBe(true);
    }
  });

  it('survives a later CREATE OR REPLACE of ledger_append, through ledger_apply_roles() as such migrations call it', async () => {
    const trx = await tdb.db.startTransaction().execute();
    try {
      const { rows } = await sql<{ def: string }>`
        SELECT pg_get_functiondef(p.oid) AS def FROM pg_proc p WHERE p.proname = 'ledger_append' AND pronargs = 23`.execute(trx);
      // pg_get_functiondef restates the settings: drop them to act as a migration restating the function's text.
      const def = rows[0]!.def.replace(/^ SET .*$/gm, '').replace(/ SECURITY DEFINER/, '');
      await sql.raw(def).execute(trx);
      const bare = await sql<{ config: string[] | null }>`SELECT proconfig AS config FROM pg_proc WHERE proname = 'ledger_append' AND pronargs = 23`.execute(trx);
      expect(bare.rows[0]!.config ?? []).not.toContain('plan_cache_mode=force_generic_plan');
      await sql`SELECT ledger_apply_roles()`.execute(trx);
      const again = await sql<{ config: string[] | null }>`SELECT proconfig AS config FROM pg_proc WHERE proname = 'ledger_append' AND pronargs = 23`.execute(trx);
      expect(again.rows[0]!.config).toContain('plan_cache_mode=force_generic_plan');
    } finally {
      await trx.rollback().execute();
    }
  });

  it('does not leak the setting into the caller: the session keeps its own plan_cache_mode after an append', async () => {
    await tdb.db.connection().execute(async (c) => {
      await sql`SET plan_cache_mode = force_custom_plan`.execute(c);
      const [outcome] = await new EventStoreRepository(c).appendBatch([jambonzRecord('plans-leak')]);
      expect(outcome!.duplicate).toBe(false);
      const { rows } = await sql<{ mode: string }>`SELECT current_setting('plan_cache_mode') AS mode`.execute(c);
      expect(rows[0]!.mode).toBe('force_custom_plan');
      await sql`RESET plan_cache_mode`.execute(c);
    });
  });

  it('goes down and up again', async () => {
    await genericPlans.down(tdb.db);
    for (const r of await settings()) expect(r.config ?? []).not.toContain('plan_cache_mode=force_generic_plan');
    await genericPlans.up(tdb.db);
    for (const r of await settings()) expect(r.config).toContain('plan_cache_mode=force_generic_plan');
  });
});
