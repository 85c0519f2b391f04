import { sql, type Transaction } from 'kysely';
import type { DB } from '@lib/db';
import type { LedgerEvent } from '@lib/ledger';
import type { Executor, ProjectionDefinition } from '@lib/projections';

/**
 * A projection that records the position of every event it is given, so that "exactly once" and "nothing
 * skipped" can be counted. `fail` decides per batch whether to throw instead (what it returns is thrown).
 */
export const recordingProjection = (
  name: string,
  fail: (events: readonly LedgerEvent[], g: number) => unknown = () => undefined,
): ProjectionDefinition => ({
  name,
  version: 1,
  createGeneration: async (db: Executor, g: number) => {
    await sql`CREATE TABLE IF NOT EXISTS ${sql.table(`${name}_g${g}`)} (position bigint NOT NULL)`.execute(db);
  },
  publish: async (trx: Transaction<DB>, g: number) => {
    await sql`CREATE OR REPLACE VIEW ${sql.table(name)} AS SELECT * FROM ${sql.table(`${name}_g${g}`)}`.execute(trx);
  },
  dropGeneration: async (db: Executor, g: number) => {
    await sql`DROP TABLE IF EXISTS ${sql.table(`${name}_g${g}`)}`.execute(db);
  },
  handle: async (trx: Transaction<DB>, events: readonly LedgerEvent[], g: number) => {
    const err = await fail(events, g);
    if (err) throw err;
    await sql`INSERT INTO ${sql.table(`${name}_g${g}`)} (position) SELECT unnest(${events.map((e) => e.position)}::bigint[])`.execute(trx);
  },
});
