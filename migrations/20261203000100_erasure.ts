import { sql, type Kysely } from 'kysely';
import { rewriteFunction } from './rewrite-function.js';

const ROLES_BEFORE = "p.proname = 'ledger_append'";
const ROLES_AFTER = "p.proname IN ('ledger_append', 'ledger_erase')";

/**
 * Erasure by subject (issue 16; README "Erasure and its proof"). `ledger_append` is NOT changed: chain rule 3's
 * seals travel in the event metadata text it already stores, and its content text is computed in Node as before.
 *
 * - `webhook_receipts.erased_at`: set when a receipt's personal data was erased (its body dropped to zero bytes,
 *   its `body_sha256` kept; its query replaced by `[erased]` when every event of it is of rule 3). The chain check
 *   does not recompute the sha256 of an erased body.
 * - `webhook_receipts.source` may be `admin`: the erasure request itself is stored and chained like a delivery.
 * - The append-only triggers of `events` and `webhook_receipts` are split: DELETE (and TRUNCATE) stay refused to
 *   everyone; an UPDATE passes only inside `ledger_erase` (a transaction-local flag it sets) and only when it
 *   changes the erasable columns (events: data, metadata; receipts: body, query, erased_at).
 * - `ledger_erase(...)`: SECURITY DEFINER, owned by the store's owner, EXECUTE granted to ledger_app only: the one
 *   way to change a stored row. It is given (event position, sealed path, commitment) triples and receipt ids,
 *   and makes the changes itself: the value at the path becomes `[erased]`, the seal `c:<commitment>`. It refuses
 *   a path that is not a personal field, an event of rule 1 or 2, a seal that holds no nonce, a commitment that is
 *   not 64 hex digits. Whether the commitment is the right one is what the chain check answers: the service
 *   verifies the touched chains inside the erasing transaction and rolls back when one does not hold.
 * - `ledger_apply_roles()` (restated from its stored definition, as 20261202000400 does) treats ledger_erase as
 *   it treats ledger_append: SECURITY DEFINER, pinned search_path, EXECUTE for ledger_app only.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE webhook_receipts ADD COLUMN erased_at timestamptz`.execute(db);
  await sql`ALTER TABLE webhook_receipts DROP CONSTRAINT webhook_receipts_source_check`.execute(db);
  await sql`ALTER TABLE webhook_receipts ADD CONSTRAINT webhook_receipts_source_check CHECK (source IN ('live', 'import', 'answer', 'admin'))`.execute(db);

  await sql`
    CREATE FUNCTION ledger_erase_guard() RETURNS trigger LANGUAGE plpgsql AS $$
    DECLARE
      erasable text[] := CASE TG_TABLE_NAME WHEN 'events' THEN ARRAY['data', 'metadata'] ELSE ARRAY['body', 'query', 'erased_at'] END;
    BEGIN
      IF coalesce(current_setting('ledger.erasing', true), '') <> 'on' THEN
        RAISE EXCEPTION 'ledger table % is append-only: % refused (only ledger_erase may change a row)', TG_TABLE_NAME, TG_OP
          USING ERRCODE = 'insufficient_privilege';
      END IF;
      IF (to_jsonb(NEW) - erasable) IS DISTINCT FROM (to_jsonb(OLD) - erasable) THEN
        RAISE EXCEPTION 'an erasure may change only % of %', erasable, TG_TABLE_NAME USING ERRCODE = 'insufficient_privilege';
      END IF;
      RETURN NEW;
    END $$`.execute(db);
  for (const table of ['events', 'webhook_receipts']) {
    await sql`DROP TRIGGER ${sql.raw(`${table}_append_only`)} ON ${sql.table(table)}`.execute(db);
    await sql`
      CREATE TRIGGER ${sql.raw(`${table}_no_delete`)} BEFORE DELETE ON ${sql.table(table)}
      FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()`.execute(db);
    await sql`
      CREATE TRIGGER ${sql.raw(`${table}_erase_only`)} BEFORE UPDATE ON ${sql.table(table)}
      FOR EACH ROW EXECUTE FUNCTION ledger_erase_guard()`.execute(db);
  }

  await sql`
    CREATE FUNCTION ledger_erase(e_pos bigint[], e_path text[], e_commit text[], r_id bigint[])
    RETURNS TABLE (events_changed int, receipts_changed int)
    LANGUAGE plpgsql AS $fn$
    DECLARE
      x record;
      ev record;
      keys text[];
      n_events int := 0;
      n_receipts int := 0;
    BEGIN
      PERFORM set_config('ledger.erasing', 'on', true);
      FOR x IN SELECT t.pos, t.path, t.c FROM unnest(e_pos, e_path, e_commit) AS t(pos, path, c) ORDER BY t.pos, t.path LOOP
        IF x.path NOT IN ('data.from', 'data.to', 'data.callerId', 'data.targets', 'data.digits', 'data.text',
                          'metadata.party.from', 'metadata.party.to', 'receipt.query') THEN
          RAISE EXCEPTION 'ledger_erase: % is not a personal field', x.path USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF x.c IS NULL OR x.c !~ '^[0-9a-f]{64}$' THEN
          RAISE EXCEPTION 'ledger_erase: the commitment of % at % is not a sha256', x.path, x.pos USING ERRCODE = 'invalid_parameter_value';
        END IF;
        SELECT e.chain_version, e.metadata->'seals'->>x.path AS seal INTO ev FROM events e WHERE e.global_position = x.pos FOR UPDATE;
        IF NOT FOUND THEN
          RAISE EXCEPTION 'ledger_erase: no event at position %', x.pos USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF ev.chain_version < 3 THEN
          RAISE EXCEPTION 'ledger_erase: the event at % is of chain rule %, which hashes its values, not commitments', x.pos, ev.chain_version
            USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF ev.seal IS NULL OR ev.seal !~ '^n:[0-9a-f]{32}$' THEN
          RAISE EXCEPTION 'ledger_erase: % of the event at % holds no kept value', x.path, x.pos USING ERRCODE = 'invalid_parameter_value';
        END IF;
        keys := string_to_array(x.path, '.');
        UPDATE events e SET
          metadata = jsonb_set(
            CASE WHEN keys[1] = 'metadata' THEN jsonb_set(e.metadata, keys[2:], '"[erased]"') ELSE e.metadata END,
            ARRAY['seals', x.path], to_jsonb('c:' || x.c)),
          data = CASE WHEN keys[1] = 'data' THEN jsonb_set(e.data, keys[2:], '"[erased]"') ELSE e.data END
        WHERE e.global_position = x.pos;
        n_events := n_events + 1;
      END LOOP;

      -- The body goes (its sha256 stays, the chain's rules 1 to 3 hash only that); the query goes when no event of
      -- the receipt hashes it in clear (rules 1 and 2).
      UPDATE webhook_receipts w SET
        body = ''::bytea,
        query = CASE WHEN w.query <> '' AND NOT EXISTS (SELECT 1 FROM events e WHERE e.receipt_id = w.id AND e.chain_version < 3)
          THEN '[erased]' ELSE w.query END,
        erased_at = coalesce(w.erased_at, now())
      WHERE w.id = ANY (r_id);
      GET DIAGNOSTICS n_receipts = ROW_COUNT;
      PERFORM set_config('ledger.erasing', 'off', true);
      RETURN QUERY SELECT n_events, n_receipts;
    END
    $fn$`.execute(db);
  await sql`REVOKE ALL ON FUNCTION ledger_erase(bigint[], text[], text[], bigint[]) FROM PUBLIC`.execute(db);
  await rewriteFunction('ledger_apply_roles()', [[ROLES_BEFORE, ROLES_AFTER]]).execute(db);
  // SECURITY DEFINER, the pinned search_path and EXECUTE for ledger_app (a no-op warning without the roles).
  await sql`SELECT ledger_apply_roles()`.execute(db);
}


export async function down(db: Kysely<any>): Promise<void> {
  await rewriteFunction('ledger_apply_roles()', [[ROLES_AFTER, ROLES_BEFORE]]).execute(db);
  await sql`DROP FUNCTION ledger_erase(bigint[], text[], text[], bigint[])`.execute(db);
  for (const table of ['events', 'webhook_receipts']) {
    await sql`DROP TRIGGER ${sql.raw(`${table}_erase_only`)} ON ${sql.table(table)}`.execute(db);
    await sql`DROP TRIGGER ${sql.raw(`${table}_no_delete`)} ON ${sql.table(table)}`.execute(db);
    await sql`
      CREATE TRIGGER ${sql.raw(`${table}_append_only`)} BEFORE UPDATE OR DELETE ON ${sql.table(table)}
      FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()`.execute(db);
  }
  await sql`DROP FUNCTION ledger_erase_guard()`.execute(db);
  await sql`ALTER TABLE webhook_receipts DROP CONSTRAINT webhook_receipts_source_check`.execute(db);
  await sql`ALTER TABLE webhook_receipts ADD CONSTRAINT webhook_receipts_source_check CHECK (source IN ('live', 'import', 'answer'))`.execute(db);
  await sql`ALTER TABLE webhook_receipts DROP COLUMN erased_at`.execute(db);
}
