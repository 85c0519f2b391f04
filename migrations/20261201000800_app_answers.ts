import { sql, type Kysely } from 'kysely';

/**
 * Tee mode (issue 13): an app's answer to a delivery is kept as a receipt of its own, `source = 'answer'`,
 * written by the same `ledger_append` (SECURITY DEFINER) as every delivery, so ledger_app needs no new grant
 * and the answer's events are chained, checkpointed, exported and verified like any other. Only the CHECK on
 * `source` changes; existing rows all satisfy the new one.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE webhook_receipts DROP CONSTRAINT webhook_receipts_source_check`.execute(db);
  await sql`ALTER TABLE webhook_receipts ADD CONSTRAINT webhook_receipts_source_check CHECK (source IN ('live', 'import', 'answer'))`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE webhook_receipts DROP CONSTRAINT webhook_receipts_source_check`.execute(db);
  await sql`ALTER TABLE webhook_receipts ADD CONSTRAINT webhook_receipts_source_check CHECK (source IN ('live', 'import'))`.execute(db);
}
