import { sql, type Kysely } from 'kysely';

/**
 * Re-translation of stored receipts by newer translators (docs/providers.md, "Translator versions and re-translation"):
 * - `receipt_translations`: one row per receipt that was translated again, append-only like the store. Its
 *   events at or below `supersedes_through` (a global position) belong to older translations: readers leave them
 *   out, and they stay in the chain and in `GET /v1/calls/{id}/events` as history.
 * - `translation_progress`: how far each provider's receipts have been re-translated (resumable runs).
 * - An overload of `ledger_append` that appends a receipt's new translation to the chains and records both. It is
 *   an overload on purpose: `ledger_apply_roles()` makes every `ledger_append` SECURITY DEFINER and grants it to
 *   ledger_app, so the app role keeps writing the store only through `ledger_append`.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE TABLE receipt_translations (
      receipt_id bigint NOT NULL REFERENCES webhook_receipts (id),
      version smallint NOT NULL,
      supersedes_through bigint NOT NULL,
      event_count integer NOT NULL,
      translated_at timestamptz NOT NULL DEFAULT now(),
      -- One translation per version: a second process re-translating the same receipt appends nothing.
      PRIMARY KEY (receipt_id, version)
    )`.execute(db);
  await sql`
    CREATE TRIGGER receipt_translations_append_only BEFORE UPDATE OR DELETE ON receipt_translations
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()`.execute(db);
  await sql`
    CREATE TRIGGER receipt_translations_no_truncate BEFORE TRUNCATE ON receipt_translations
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()`.execute(db);

  await sql`
    CREATE TABLE translation_progress (
      provider text PRIMARY KEY,
      -- The translator version the run is (or was) bringing the store to.
      version smallint NOT NULL,
      -- Receipts of the provider up to this id have been re-translated at that version.
      through_receipt bigint NOT NULL,
      -- The last receipt of the run (receipts after it were stored by translators of that version or newer).
      until_receipt bigint NOT NULL,
      done boolean NOT NULL,
      updated_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);

  await sql`
    CREATE FUNCTION ledger_append(
      p_provider text, p_version smallint, p_through bigint, p_until bigint, p_done boolean,
      t_receipt bigint[],
      e_owner int[], e_stream text[], e_event_id uuid[], e_type text[], e_data text[], e_metadata text[],
      e_occurred timestamptz[], e_content text[], e_chain_version smallint
    ) RETURNS TABLE (receipt_id bigint, last_position bigint)
    LANGUAGE plpgsql AS $fn$
    DECLARE
      kept int[];
      head_name text[];
      head_base int[];
      head_hash bytea[];
      o_idx int[] := '{}';
      o_ver int[] := '{}';
      o_prev bytea[] := '{}';
      o_hash bytea[] := '{}';
      f_name text[] := '{}';
      f_hash bytea[] := '{}';
      cur text := NULL;
      ver int;
      prev bytea;
      h bytea;
      ev record;
      top bigint;
    BEGIN
      -- The translation rows first: a receipt another process already re-translated at this version is skipped,
      -- and its events are not appended twice. Events of older translations are those already stored.
      WITH ins AS (
        INSERT INTO receipt_translations (receipt_id, version, supersedes_through, event_count)
        SELECT t.r, p_version, coalesce((SELECT max(e.global_position) FROM events e WHERE e.receipt_id = t.r), 0),
          (SELECT count(*) FROM unnest(e_owner) AS x(ow) WHERE x.ow = t.o)
        FROM unnest(t_receipt) WITH ORDINALITY AS t(r, o)
        ORDER BY t.r
        ON CONFLICT DO NOTHING
        RETURNING receipt_translations.receipt_id AS rid
      )
      SELECT array_agg(t.o::int) INTO kept FROM ins JOIN unnest(t_receipt) WITH ORDINALITY AS t(r, o) ON t.r = ins.rid;
      kept := coalesce(kept, '{}');

      IF cardinality(kept) > 0 AND EXISTS (SELECT 1 FROM unnest(e_owner) AS x(ow) WHERE x.ow = ANY (kept)) THEN
        -- Stream heads locked in name order, versions and hashes handed out as ledger_append(receipts...) does.
        WITH c AS (
          SELECT x.st, count(*)::int AS n FROM unnest(e_owner, e_stream) AS x(ow, st)
          WHERE x.ow = ANY (kept) GROUP BY x.st
        ), up AS (
          INSERT INTO streams AS s (stream_name, version)
          SELECT c.st, c.n FROM c ORDER BY c.st
          ON CONFLICT (stream_name) DO UPDATE SET version = s.version + EXCLUDED.version
          RETURNING s.stream_name, s.version, s.last_hash
        )
        SELECT array_agg(up.stream_name), array_agg(up.version - c.n), array_agg(up.last_hash)
        INTO head_name, head_base, head_hash
        FROM up JOIN c ON c.st = up.stream_name;

        FOR ev IN
          SELECT x.o::int AS o, x.st, x.content, hd.base, hd.lh
          FROM unnest(e_owner, e_stream, e_content) WITH ORDINALITY AS x(ow, st, content, o)
          JOIN unnest(head_name, head_base, head_hash) AS hd(name, base, lh) ON hd.name = x.st
          WHERE x.ow = ANY (kept)
          ORDER BY x.st, x.o
        LOOP
          IF cur IS DISTINCT FROM ev.st THEN
            IF cur IS NOT NULL THEN
              f_name := f_name || cur;
              f_hash := f_hash || prev;
            END IF;
            cur := ev.st;
            ver := ev.base;
            prev := ev.lh;
          END IF;
          ver := ver + 1;
          h := sha256(coalesce(prev, ''::bytea) || convert_to(ver::text || ':' || ev.content, 'UTF8'));
          o_idx := o_idx || ev.o;
          o_ver := o_ver || ver;
          o_prev := o_prev || prev;
          o_hash := o_hash || h;
          prev := h;
        END LOOP;
        f_name := f_name || cur;
        f_hash := f_hash || prev;

        -- received_at is the receipt's own, as for the first translation (the hash the client built covers it).
        INSERT INTO events (event_id, stream_name, stream_version, type, schema_version, data, metadata, receipt_id,
          occurred_at, received_at, prev_hash, hash, chain_version)
        SELECT x.eid, x.st, z.v, x.ty, 1, x.d::jsonb, x.m::jsonb, w.id, x.occ, w.received_at, z.ph, z.hh, e_chain_version
        FROM unnest(o_idx, o_ver, o_prev, o_hash) AS z(i, v, ph, hh)
        JOIN unnest(e_owner, e_stream, e_event_id, e_type, e_data, e_metadata, e_occurred)
          WITH ORDINALITY AS x(ow, st, eid, ty, d, m, occ, o) ON x.o = z.i
        JOIN webhook_receipts w ON w.id = t_receipt[x.ow]
        ORDER BY z.i;

        UPDATE streams AS s SET last_hash = f.h FROM unnest(f_name, f_hash) AS f(n, h) WHERE s.stream_name = f.n;
        SELECT max(e.global_position) INTO top FROM events e WHERE e.receipt_id = ANY (t_receipt);
        PERFORM pg_notify('ledger_events', top::text);
      END IF;

      INSERT INTO translation_progress AS tp (provider, version, through_receipt, until_receipt, done)
      VALUES (p_provider, p_version, p_through, p_until, p_done)
      ON CONFLICT (provider) DO UPDATE SET version = EXCLUDED.version, through_receipt = EXCLUDED.through_receipt,
        until_receipt = EXCLUDED.until_receipt, done = EXCLUDED.done, updated_at = now();

      RETURN QUERY
      SELECT t_receipt[k], (SELECT max(e.global_position) FROM events e WHERE e.receipt_id = t_receipt[k])
      FROM unnest(kept) AS k;
    END
    $fn$`.execute(db);
  // Makes the new overload SECURITY DEFINER and grants it to ledger_app (a no-op warning without the roles).
  await sql`SELECT ledger_apply_roles()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP FUNCTION ledger_append(text, smallint, bigint, bigint, boolean, bigint[], int[], text[], uuid[], text[], text[], text[], timestamptz[], text[], smallint)`.execute(db);
  await sql`DROP TABLE translation_progress`.execute(db);
  await sql`DROP TABLE receipt_translations`.execute(db);
}
