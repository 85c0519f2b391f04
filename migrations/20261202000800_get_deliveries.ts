import { sql, type Kysely } from 'kysely';

/** sha256 of zero bytes: the body of every GET delivery. */
const EMPTY_SHA256 = "sha256(''::bytea)";

/**
 * ledger_append of 20261202000200_lean_append (set-wise versions and chains) with the changes described at `up`.
 */
const APPEND_FUNCTION = `
    CREATE OR REPLACE FUNCTION ledger_append(
      r_provider text[], r_sha bytea[], r_dedupe bytea[], r_body bytea[], r_content_type text[], r_path text[],
      r_query text[], r_headers text[], r_remote text[], r_received timestamptz[], r_source text[], r_sig_status text[],
      r_sig_ts timestamptz[],
      e_owner int[], e_stream text[], e_event_id uuid[], e_type text[], e_data text[], e_metadata text[],
      e_occurred timestamptz[], e_content text[], e_chain_version smallint
    ) RETURNS TABLE (ord int, receipt_id bigint, duplicate boolean, last_position bigint, types text[])
    LANGUAGE plpgsql AS $fn$
    DECLARE
      kept_ord int[];
      kept_id bigint[];
      head_name text[];
      head_base int[];
      head_hash bytea[];
      top bigint;
      p_ord int[] := '{}';
      p_pos bigint[] := '{}';
      p_types text[] := '{}';
    BEGIN
      -- No arbiter: a conflict on either key (exact bytes, or canonical content) makes the delivery a duplicate.
      -- Sorted by (provider, dedupe key) so that concurrent batches wait for each other's keys in one order.
      WITH ins AS (
        INSERT INTO webhook_receipts (provider, body_sha256, dedupe_key, body, content_type, path, query, headers,
          remote_addr, received_at, source, signature_status, signature_timestamp)
        SELECT t.p, t.s, t.dk, t.b, t.ct, t.pa, t.q, t.hd::jsonb, t.ra, t.rcv, t.src, t.ss, t.sts
        FROM unnest(r_provider, r_sha, r_dedupe, r_body, r_content_type, r_path, r_query, r_headers, r_remote,
          r_received, r_source, r_sig_status, r_sig_ts)
          WITH ORDINALITY AS t(p, s, dk, b, ct, pa, q, hd, ra, rcv, src, ss, sts, o)
        ORDER BY t.p, t.dk
        ON CONFLICT DO NOTHING
        RETURNING id, provider, coalesce(dedupe_key, body_sha256) AS dk
      )
      -- Matched back by dedupe key, not body: GET deliveries all have the same (empty) body.
      SELECT array_agg(k.o ORDER BY k.o), array_agg(ins.id ORDER BY k.o) INTO kept_ord, kept_id
      FROM ins JOIN unnest(r_provider, r_dedupe) WITH ORDINALITY AS k(p, dk, o) ON k.p = ins.provider AND k.dk = ins.dk;
      kept_ord := coalesce(kept_ord, '{}');
      kept_id := coalesce(kept_id, '{}');

      IF cardinality(kept_ord) > 0 AND cardinality(e_owner) > 0 THEN
        -- Stream heads locked by a sorted upsert (concurrent batches cannot deadlock), each moved on by the
        -- number of events it receives; base = the version before this batch.
        WITH c AS (
          SELECT x.st, count(*)::int AS n FROM unnest(e_owner, e_stream) AS x(ow, st)
          WHERE x.ow = ANY (kept_ord) GROUP BY x.st
        ), up AS (
          INSERT INTO streams AS s (stream_name, version)
          SELECT c.st, c.n FROM c ORDER BY c.st
          ON CONFLICT (stream_name) DO UPDATE SET version = s.version + EXCLUDED.version
          RETURNING s.stream_name, s.version, s.last_hash
        )
        SELECT array_agg(up.stream_name), array_agg(up.version - c.n), array_agg(up.last_hash)
        INTO head_name, head_base, head_hash
        FROM up JOIN c ON c.st = up.stream_name;

        WITH ev AS (
          SELECT x.o::int AS i, x.st, x.content, hd.lh,
            hd.base + row_number() OVER (PARTITION BY x.st ORDER BY x.o)::int AS ver
          FROM unnest(e_owner, e_stream, e_content) WITH ORDINALITY AS x(ow, st, content, o)
          JOIN unnest(head_name, head_base, head_hash) AS hd(name, base, lh) ON hd.name = x.st
          WHERE x.ow = ANY (kept_ord)
        ), chained AS (
          SELECT ev.i, ev.st, ev.ver, ev.lh,
            ledger_chain(ev.lh, ev.ver, ev.content) OVER (PARTITION BY ev.st ORDER BY ev.i ROWS UNBOUNDED PRECEDING) AS h
          FROM ev
        ), linked AS (
          SELECT chained.i, chained.st, chained.ver, chained.h,
            coalesce(lag(chained.h) OVER (PARTITION BY chained.st ORDER BY chained.i), chained.lh) AS ph
          FROM chained
        ), tails AS (
          -- Each stream's new head hash: its last link in this batch.
          UPDATE streams AS s SET last_hash = t.h
          FROM (SELECT DISTINCT ON (linked.st) linked.st, linked.h FROM linked ORDER BY linked.st, linked.i DESC) AS t
          WHERE s.stream_name = t.st
        ), ins AS (
          INSERT INTO events (event_id, stream_name, stream_version, type, schema_version, data, metadata, receipt_id,
            occurred_at, received_at, prev_hash, hash, chain_version)
          SELECT x.eid, x.st, z.ver, x.ty, 1, x.d::jsonb, x.m::jsonb, kid.id, x.occ, r_received[x.ow], z.ph, z.h, e_chain_version
          FROM linked AS z
          JOIN unnest(e_owner, e_stream, e_event_id, e_type, e_data, e_metadata, e_occurred)
            WITH ORDINALITY AS x(ow, st, eid, ty, d, m, occ, o) ON x.o = z.i
          JOIN unnest(kept_ord, kept_id) AS kid(o, id) ON kid.o = x.ow
          ORDER BY z.i
          RETURNING events.receipt_id AS rid, events.global_position AS gp, events.type AS ty
        ), per AS (
          SELECT ins.rid, max(ins.gp) AS pos, array_agg(ins.ty ORDER BY ins.gp) AS types
          FROM ins GROUP BY ins.rid
        )
        SELECT array_agg(kid.o), array_agg(per.pos), array_agg(array_to_string(per.types, ','))
        INTO p_ord, p_pos, p_types
        FROM per JOIN unnest(kept_ord, kept_id) AS kid(o, id) ON kid.id = per.rid;

        SELECT max(v) INTO top FROM unnest(p_pos) AS v;
        PERFORM pg_notify('ledger_events', top::text);
      END IF;

      -- A duplicate answers with the receipt it duplicates: same bytes, or (new rows) the same canonical content.
      RETURN QUERY
      SELECT kid.o::int, kid.id, false, pp.pos, coalesce(string_to_array(pp.types, ','), '{}')
      FROM unnest(kept_ord, kept_id) AS kid(o, id)
      LEFT JOIN unnest(coalesce(p_ord, '{}'), coalesce(p_pos, '{}'), coalesce(p_types, '{}')) AS pp(o, pos, types) ON pp.o = kid.o
      UNION ALL
      SELECT k.o::int, r.id, true, agg.pos, coalesce(agg.types, '{}')
      FROM unnest(r_provider, r_sha, r_dedupe) WITH ORDINALITY AS k(p, s, dk, o)
      JOIN LATERAL (
        SELECT w.id FROM webhook_receipts w
        WHERE w.provider = k.p AND ((w.body_sha256 = k.s AND k.s <> ${EMPTY_SHA256}) OR coalesce(w.dedupe_key, w.body_sha256) = k.dk)
        ORDER BY w.id LIMIT 1
      ) r ON true
      LEFT JOIN LATERAL (
        SELECT max(e.global_position) AS pos, array_agg(e.type ORDER BY e.global_position) AS types
        FROM events e WHERE e.receipt_id = r.id
      ) agg ON true
      WHERE NOT (k.o = ANY (kept_ord));
    END
    $fn$`;

/** The function as 20261202000200_lean_append left it (for `down`). */
const PREVIOUS_APPEND_FUNCTION = `
    CREATE OR REPLACE FUNCTION ledger_append(
      r_provider text[], r_sha bytea[], r_dedupe bytea[], r_body bytea[], r_content_type text[], r_path text[],
      r_query text[], r_headers text[], r_remote text[], r_received timestamptz[], r_source text[], r_sig_status text[],
      r_sig_ts timestamptz[],
      e_owner int[], e_stream text[], e_event_id uuid[], e_type text[], e_data text[], e_metadata text[],
      e_occurred timestamptz[], e_content text[], e_chain_version smallint
    ) RETURNS TABLE (ord int, receipt_id bigint, duplicate boolean, last_position bigint, types text[])
    LANGUAGE plpgsql AS $fn$
    DECLARE
      kept_ord int[];
      kept_id bigint[];
      head_name text[];
      head_base int[];
      head_hash bytea[];
      top bigint;
      p_ord int[] := '{}';
      p_pos bigint[] := '{}';
      p_types text[] := '{}';
    BEGIN
      -- No arbiter: a conflict on either key (exact bytes, or canonical content) makes the delivery a duplicate.
      -- Sorted by (provider, dedupe key) so that concurrent batches wait for each other's keys in one order.
      WITH ins AS (
        INSERT INTO webhook_receipts (provider, body_sha256, dedupe_key, body, content_type, path, query, headers,
          remote_addr, received_at, source, signature_status, signature_timestamp)
        SELECT t.p, t.s, t.dk, t.b, t.ct, t.pa, t.q, t.hd::jsonb, t.ra, t.rcv, t.src, t.ss, t.sts
        FROM unnest(r_provider, r_sha, r_dedupe, r_body, r_content_type, r_path, r_query, r_headers, r_remote,
          r_received, r_source, r_sig_status, r_sig_ts)
          WITH ORDINALITY AS t(p, s, dk, b, ct, pa, q, hd, ra, rcv, src, ss, sts, o)
        ORDER BY t.p, t.dk
        ON CONFLICT DO NOTHING
        RETURNING id, provider, body_sha256
      )
      SELECT array_agg(k.o ORDER BY k.o), array_agg(ins.id ORDER BY k.o) INTO kept_ord, kept_id
      FROM ins JOIN unnest(r_provider, r_sha) WITH ORDINALITY AS k(p, s, o) ON k.p = ins.provider AND k.s = ins.body_sha256;
      kept_ord := coalesce(kept_ord, '{}');
      kept_id := coalesce(kept_id, '{}');

      IF cardinality(kept_ord) > 0 AND cardinality(e_owner) > 0 THEN
        -- Stream heads locked by a sorted upsert (concurrent batches cannot deadlock), each moved on by the
        -- number of events it receives; base = the version before this batch.
        WITH c AS (
          SELECT x.st, count(*)::int AS n FROM unnest(e_owner, e_stream) AS x(ow, st)
          WHERE x.ow = ANY (kept_ord) GROUP BY x.st
        ), up AS (
          INSERT INTO streams AS s (stream_name, version)
          SELECT c.st, c.n FROM c ORDER BY c.st
          ON CONFLICT (stream_name) DO UPDATE SET version = s.version + EXCLUDED.version
          RETURNING s.stream_name, s.version, s.last_hash
        )
        SELECT array_agg(up.stream_name), array_agg(up.version - c.n), array_agg(up.last_hash)
        INTO head_name, head_base, head_hash
        FROM up JOIN c ON c.st = up.stream_name;

        WITH ev AS (
          SELECT x.o::int AS i, x.st, x.content, hd.lh,
            hd.base + row_number() OVER (PARTITION BY x.st ORDER BY x.o)::int AS ver
          FROM unnest(e_owner, e_stream, e_content) WITH ORDINALITY AS x(ow, st, content, o)
          JOIN unnest(head_name, head_base, head_hash) AS hd(name, base, lh) ON hd.name = x.st
          WHERE x.ow = ANY (kept_ord)
        ), chained AS (
          SELECT ev.i, ev.st, ev.ver, ev.lh,
            ledger_chain(ev.lh, ev.ver, ev.content) OVER (PARTITION BY ev.st ORDER BY ev.i ROWS UNBOUNDED PRECEDING) AS h
          FROM ev
        ), linked AS (
          SELECT chained.i, chained.st, chained.ver, chained.h,
            coalesce(lag(chained.h) OVER (PARTITION BY chained.st ORDER BY chained.i), chained.lh) AS ph
          FROM chained
        ), tails AS (
          -- Each stream's new head hash: its last link in this batch.
          UPDATE streams AS s SET last_hash = t.h
          FROM (SELECT DISTINCT ON (linked.st) linked.st, linked.h FROM linked ORDER BY linked.st, linked.i DESC) AS t
          WHERE s.stream_name = t.st
        ), ins AS (
          INSERT INTO events (event_id, stream_name, stream_version, type, schema_version, data, metadata, receipt_id,
            occurred_at, received_at, prev_hash, hash, chain_version)
          SELECT x.eid, x.st, z.ver, x.ty, 1, x.d::jsonb, x.m::jsonb, kid.id, x.occ, r_received[x.ow], z.ph, z.h, e_chain_version
          FROM linked AS z
          JOIN unnest(e_owner, e_stream, e_event_id, e_type, e_data, e_metadata, e_occurred)
            WITH ORDINALITY AS x(ow, st, eid, ty, d, m, occ, o) ON x.o = z.i
          JOIN unnest(kept_ord, kept_id) AS kid(o, id) ON kid.o = x.ow
          ORDER BY z.i
          RETURNING events.receipt_id AS rid, events.global_position AS gp, events.type AS ty
        ), per AS (
          SELECT ins.rid, max(ins.gp) AS pos, array_agg(ins.ty ORDER BY ins.gp) AS types
          FROM ins GROUP BY ins.rid
        )
        SELECT array_agg(kid.o), array_agg(per.pos), array_agg(array_to_string(per.types, ','))
        INTO p_ord, p_pos, p_types
        FROM per JOIN unnest(kept_ord, kept_id) AS kid(o, id) ON kid.id = per.rid;

        SELECT max(v) INTO top FROM unnest(p_pos) AS v;
        PERFORM pg_notify('ledger_events', top::text);
      END IF;

      -- A duplicate answers with the receipt it duplicates: same bytes, or (new rows) the same canonical content.
      RETURN QUERY
      SELECT kid.o::int, kid.id, false, pp.pos, coalesce(string_to_array(pp.types, ','), '{}')
      FROM unnest(kept_ord, kept_id) AS kid(o, id)
      LEFT JOIN unnest(coalesce(p_ord, '{}'), coalesce(p_pos, '{}'), coalesce(p_types, '{}')) AS pp(o, pos, types) ON pp.o = kid.o
      UNION ALL
      SELECT k.o::int, r.id, true, agg.pos, coalesce(agg.types, '{}')
      FROM unnest(r_provider, r_sha, r_dedupe) WITH ORDINALITY AS k(p, s, dk, o)
      JOIN LATERAL (
        SELECT w.id FROM webhook_receipts w
        WHERE w.provider = k.p AND (w.body_sha256 = k.s OR coalesce(w.dedupe_key, w.body_sha256) = k.dk)
        ORDER BY w.id LIMIT 1
      ) r ON true
      LEFT JOIN LATERAL (
        SELECT max(e.global_position) AS pos, array_agg(e.type ORDER BY e.global_position) AS types
        FROM events e WHERE e.receipt_id = r.id
      ) agg ON true
      WHERE NOT (k.o = ANY (kept_ord));
    END
    $fn$`;

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

const reapplyRoles = async (db: Kysely<any>) => {
  await sql`
    DO $$
    BEGIN
      IF EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'ledger_apply_roles' AND pronamespace = current_schema()::regnamespace)
        AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ledger_app') THEN
        PERFORM ledger_apply_roles();
      END IF;
    END $$`.execute(db);
};
