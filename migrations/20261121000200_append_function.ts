import { sql, type Kysely } from 'kysely';

/**
 * The whole append of a batch as one server-side function, called as a single statement: one round trip
 * per group commit instead of seven, and plans cached by PL/pgSQL instead of re-planned per call.
 *
 * Receipts go in first under the dedupe constraint; only the deliveries that were new get events. Stream
 * heads are locked by a sorted upsert (so concurrent batches cannot deadlock), then each event gets the next
 * stream version and hash = sha256(previous hash || "<version>:" || content), content being the canonical
 * JSON the client computed. Returns, per input receipt (1-based `ord`), its id, whether it was a duplicate,
 * the position of its last event and its event types.
 */
export async function up(db: Kysely<any>): Promise<void> {
  await sql`
    CREATE FUNCTION ledger_append(
      r_provider text[], r_sha bytea[], r_body bytea[], r_content_type text[], r_path text[], r_query text[],
      r_headers text[], r_remote text[], r_received timestamptz[], r_source text[], r_sig_status text[],
      r_sig_ts timestamptz[],
      e_owner int[], e_stream text[], e_event_id uuid[], e_type text[], e_data text[], e_metadata text[],
      e_occurred timestamptz[], e_content text[]
    ) RETURNS TABLE (ord int, receipt_id bigint, duplicate boolean, last_position bigint, types text[])
    LANGUAGE plpgsql AS $fn$
    DECLARE
      kept_ord int[];
      kept_id bigint[];
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
      p_ord int[] := '{}';
      p_pos bigint[] := '{}';
      p_types text[] := '{}';
    BEGIN
      WITH ins AS (
        INSERT INTO webhook_receipts (provider, body_sha256, body, content_type, path, query, headers, remote_addr,
          received_at, source, signature_status, signature_timestamp)
        SELECT t.p, t.s, t.b, t.ct, t.pa, t.q, t.hd::jsonb, t.ra, t.rcv, t.src, t.ss, t.sts
        FROM unnest(r_provider, r_sha, r_body, r_content_type, r_path, r_query, r_headers, r_remote, r_received,
          r_source, r_sig_status, r_sig_ts) WITH ORDINALITY AS t(p, s, b, ct, pa, q, hd, ra, rcv, src, ss, sts, o)
        ORDER BY t.o
        ON CONFLICT ON CONSTRAINT webhook_receipts_dedupe DO NOTHING
        RETURNING id, provider, body_sha256
      )
      SELECT array_agg(k.o ORDER BY k.o), array_agg(ins.id ORDER BY k.o) INTO kept_ord, kept_id
      FROM ins JOIN unnest(r_provider, r_sha) WITH ORDINALITY AS k(p, s, o) ON k.p = ins.provider AND k.s = ins.body_sha256;
      kept_ord := coalesce(kept_ord, '{}');
      kept_id := coalesce(kept_id, '{}');

      IF cardinality(kept_ord) > 0 AND cardinality(e_owner) > 0 THEN
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

        FOR ev IN
          SELECT x.o::int AS o, x.st, x.content, hd.base, hd.lh
          FROM unnest(e_owner, e_stream, e_content) WITH ORDINALITY AS x(ow, st, content, o)
          JOIN unnest(head_name, head_base, head_hash) AS hd(name, base, lh) ON hd.name = x.st
          WHERE x.ow = ANY (kept_ord)
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

        WITH ins AS (
          INSERT INTO events (event_id, stream_name, stream_version, type, schema_version, data, metadata, receipt_id,
            occurred_at, received_at, prev_hash, hash)
          SELECT x.eid, x.st, z.v, x.ty, 1, x.d::jsonb, x.m::jsonb, kid.id, x.occ, r_received[x.ow], z.ph, z.hh
          FROM unnest(o_idx, o_ver, o_prev, o_hash) AS z(i, v, ph, hh)
          JOIN unnest(e_owner, e_stream, e_event_id, e_type, e_data, e_metadata, e_occurred)
            WITH ORDINALITY AS x(ow, st, eid, ty, d, m, occ, o) ON x.o = z.i
          JOIN unnest(kept_ord, kept_id) AS kid(o, id) ON kid.o = x.ow
          ORDER BY z.i
          RETURNING events.receipt_id AS rid, events.global_position AS gp, events.type AS ty
        ), per AS (
          -- Positions come back from the insert itself: no second read of the rows just written.
          SELECT ins.rid, max(ins.gp) AS pos, array_agg(ins.ty ORDER BY ins.gp) AS types
          FROM ins GROUP BY ins.rid
        )
        SELECT array_agg(kid.o), array_agg(per.pos), array_agg(array_to_string(per.types, ','))
        INTO p_ord, p_pos, p_types
        FROM per JOIN unnest(kept_ord, kept_id) AS kid(o, id) ON kid.id = per.rid;

        UPDATE streams AS s SET last_hash = f.h FROM unnest(f_name, f_hash) AS f(n, h) WHERE s.stream_name = f.n;
        SELECT max(v) INTO top FROM unnest(p_pos) AS v;
        PERFORM pg_notify('ledger_events', top::text);
      END IF;

      -- New deliveries answer from what was just inserted; only duplicates read the store.
      RETURN QUERY
      SELECT kid.o::int, kid.id, false, pp.pos, coalesce(string_to_array(pp.types, ','), '{}')
      FROM unnest(kept_ord, kept_id) AS kid(o, id)
      LEFT JOIN unnest(coalesce(p_ord, '{}'), coalesce(p_pos, '{}'), coalesce(p_types, '{}')) AS pp(o, pos, types) ON pp.o = kid.o
      UNION ALL
      SELECT k.o::int, r.id, true, agg.pos, coalesce(agg.types, '{}')
      FROM unnest(r_provider, r_sha) WITH ORDINALITY AS k(p, s, o)
      JOIN webhook_receipts r ON r.provider = k.p AND r.body_sha256 = k.s
      LEFT JOIN LATERAL (
        SELECT max(e.global_position) AS pos, array_agg(e.type ORDER BY e.global_position) AS types
        FROM events e WHERE e.receipt_id = r.id
      ) agg ON true
      WHERE NOT (k.o = ANY (kept_ord));
    END
    $fn$`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP FUNCTION ledger_append`.execute(db);
}
