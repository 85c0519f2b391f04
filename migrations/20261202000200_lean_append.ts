import { sql, type Kysely } from 'kysely';
import { createAppendFunction } from './20261201000200_tamper_evidence.js';

/**
 * Less work per delivery on the write path (issue 14):
 *
 * - `events.event_id` loses its UNIQUE constraint. The id is derived from (provider, body sha256, index), and a
 *   second receipt with the same provider and body sha256 is refused by `webhook_receipts_dedupe`, so the ids
 *   of new events are unique already; no route, projection or check looks an event up by id. The constraint
 *   cost a random-key b-tree insert (a uuid lands on any leaf page, and each first touch after a checkpoint
 *   writes the whole page to the WAL) for every event. The indexes that stay each serve a reader: the primary
 *   key (positions), `events_stream_version` (per-stream order, chain reads, the rebuild by stream range),
 *   `events_commit_order` (the projector's cursor, checkpoints), `events_receipt` (a duplicate's answer, a
 *   receipt's events) and the projection's partial `events_child_leg`.
 * - `ledger_append` computes versions and hash chains set-wise: a row number per stream and a running
 *   `ledger_chain` aggregate (a window over each stream in batch order) instead of a PL/pgSQL loop that grew
 *   five arrays by concatenation, each append copying the array (quadratic in the events of a batch). The hash
 *   is the same expression, sha256(previous hash || "<version>:" || content), so chains written before and
 *   after verify alike; the signature and the result are unchanged.
 */
/** The set-wise ledger_append; 20261202000800_get_deliveries builds on this text. */
export const LEAN_APPEND_FUNCTION = `
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

export async function up(db: Kysely<any>): Promise<void> {
  await sql`ALTER TABLE events DROP CONSTRAINT events_event_id_key`.execute(db);

  // One link: the state is the previous event's hash (NULL before the first event of the batch, where the
  // stream head's hash, NULL for a new stream, is the previous one). PL/pgSQL rather than SQL: an aggregate's
  // transition function is never inlined, and a PL/pgSQL expression is evaluated without an executor per call.
  await sql`
    CREATE FUNCTION ledger_chain_step(state bytea, head bytea, ver int, content text) RETURNS bytea
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE AS
    $$ BEGIN RETURN sha256(coalesce(state, head, ''::bytea) || convert_to(ver::text || ':' || content, 'UTF8')); END $$`.execute(db);
  await sql`CREATE AGGREGATE ledger_chain(bytea, int, text) (SFUNC = ledger_chain_step, STYPE = bytea)`.execute(db);

  await sql.raw(LEAN_APPEND_FUNCTION).execute(db);
  // CREATE OR REPLACE reset SECURITY DEFINER and the pinned search_path: put the roles' rules back.
  await sql`SELECT ledger_apply_roles()`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  // By signature: the re-translation migration adds a second ledger_append.
  await sql`DROP FUNCTION ledger_append(text[], bytea[], bytea[], bytea[], text[], text[], text[], text[], text[], timestamptz[], text[], text[],
    timestamptz[], int[], text[], uuid[], text[], text[], text[], timestamptz[], text[], smallint)`.execute(db);
  await createAppendFunction(db);
  await sql`SELECT ledger_apply_roles()`.execute(db);
  await sql`DROP AGGREGATE ledger_chain(bytea, int, text)`.execute(db);
  await sql`DROP FUNCTION ledger_chain_step(bytea, bytea, int, text)`.execute(db);
  await sql`ALTER TABLE events ADD CONSTRAINT events_event_id_key UNIQUE (event_id)`.execute(db);
}
