import { sql, type Kysely } from 'kysely';
import { LEAN_APPEND_FUNCTION } from './20261202000200_lean_append.js';
import { reapplyRoles } from './rewrite-function.js';

/** sha256 of zero bytes: the body of every GET delivery. */
const EMPTY_SHA256 = "sha256(''::bytea)";

/** Replaces `from` in `text`, refusing to run when `from` is not there (the base text changed under it). */
const edit = (text: string, from: string, to: string): string => {
  if (!text.includes(from)) throw new Error(`get_deliveries: ledger_append no longer contains ${from.slice(0, 60)}`);
  return text.replace(from, to);
};

/**
 * ledger_append of 20261202000200_lean_append (set-wise versions and chains) with the changes described at `up`:
 * inserted receipts matched back by dedupe key, and a duplicate's original found by body only for a non-empty body.
 */
const APPEND_FUNCTION = edit(
  edit(
    LEAN_APPEND_FUNCTION,
    `        RETURNING id, provider, body_sha256
      )
      SELECT array_agg(k.o ORDER BY k.o), array_agg(ins.id ORDER BY k.o) INTO kept_ord, kept_id
      FROM ins JOIN unnest(r_provider, r_sha) WITH ORDINALITY AS k(p, s, o) ON k.p = ins.provider AND k.s = ins.body_sha256;`,
    `        RETURNING id, provider, coalesce(dedupe_key, body_sha256) AS dk
      )
      -- Matched back by dedupe key, not body: GET deliveries all have the same (empty) body.
      SELECT array_agg(k.o ORDER BY k.o), array_agg(ins.id ORDER BY k.o) INTO kept_ord, kept_id
      FROM ins JOIN unnest(r_provider, r_dedupe) WITH ORDINALITY AS k(p, dk, o) ON k.p = ins.provider AND k.dk = ins.dk;`,
  ),
  'WHERE w.provider = k.p AND (w.body_sha256 = k.s OR coalesce(w.dedupe_key, w.body_sha256) = k.dk)',
  `WHERE w.provider = k.p AND ((w.body_sha256 = k.s AND k.s <> ${EMPTY_SHA256}) OR coalesce(w.dedupe_key, w.body_sha256) = k.dk)`,
);

/** The function as 20261202000200_lean_append left it (for `down`). */
const PREVIOUS_APPEND_FUNCTION = LEAN_APPEND_FUNCTION;

/**
 * GET deliveries (issue 13): Twilio and Restcomm call a voice URL or callback set to GET with the parameters in the
 * query and no body. Every such receipt has the same body, so:
 * - the unique (provider, body_sha256) constraint would make every GET after the first a "duplicate" (dropped):
 *   it becomes a unique index on the same columns for non-empty bodies only. Non-empty bodies keep exactly the
 *   old rule; empty ones are deduplicated by their dedupe key alone (for a GET, the canonical query: dedupe-key.ts).
 * - `ledger_append` matched inserted receipts back to the batch by body sha256: it now matches them by dedupe
 *   key, and finds the original of a duplicate by body only when the body is not empty. Otherwise unchanged.
 * Restated after the replacement: SECURITY DEFINER and the search_path, through `ledger_apply_roles()` (see
 * 20261201000400_database_roles), when the roles are in place.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE webhook_receipts DROP CONSTRAINT webhook_receipts_dedupe`.execute(db);
  await sql`CREATE UNIQUE INDEX webhook_receipts_dedupe ON webhook_receipts (provider, body_sha256) WHERE body_sha256 <> ${sql.raw(EMPTY_SHA256)}`.execute(db);
  await sql.raw(APPEND_FUNCTION).execute(db);
  await reapplyRoles(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP INDEX webhook_receipts_dedupe`.execute(db);
  await sql`ALTER TABLE webhook_receipts ADD CONSTRAINT webhook_receipts_dedupe UNIQUE (provider, body_sha256)`.execute(db);
  await sql.raw(PREVIOUS_APPEND_FUNCTION).execute(db);
  await reapplyRoles(db);
}
