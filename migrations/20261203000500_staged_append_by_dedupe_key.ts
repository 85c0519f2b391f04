import { type Kysely } from 'kysely';
import { rewriteFunction } from './rewrite-function.js';

const BEFORE = [
  'RETURNING id, provider, body_sha256\n',
  'ON s.batch = p_batch AND s.provider = ins.provider AND s.body_sha256 = ins.body_sha256;',
] as const;
const AFTER = [
  'RETURNING id, provider, dedupe_key\n',
  'ON s.batch = p_batch AND s.provider = ins.provider AND s.dedupe_key = ins.dedupe_key;',
] as const;

/**
 * `ledger_append_staged` (20261202000300_bulk_import) matched the receipts it inserted back to the staged rows by
 * (provider, body sha256). A GET delivery (20261202000800_get_deliveries) has an empty body, so two GET deliveries
 * of one provider in one chunk both matched both inserted receipts: their events were counted twice and the chunk
 * failed on `events_stream_version` (the import then split it down to single lines, slowly, instead of storing
 * it). They are now matched by (provider, dedupe key), which is unique within a chunk (StagedChunk stages one row
 * per key) and is what `ledger_append` matches by since 20261202000800. Nothing else in the function changes: it is
 * rewritten from its own stored definition, as 20261202000400 rewrites ledger_apply_roles, and keeps its owner,
 * SECURITY DEFINER, settings and grants (CREATE OR REPLACE). `ledger_append` is not touched.
 */

export async function up(db: Kysely<any>): Promise<void> {
  await rewriteFunction('ledger_append_staged(uuid, smallint)', [[BEFORE[0], AFTER[0]], [BEFORE[1], AFTER[1]]]).execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await rewriteFunction('ledger_append_staged(uuid, smallint)', [[AFTER[0], BEFORE[0]], [AFTER[1], BEFORE[1]]]).execute(db);
}
