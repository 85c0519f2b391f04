import { sql, type Kysely } from 'kysely';

/**
 * Bulk import (issue 14): the import streams its rows with COPY into two staging tables and appends them set-wise
 * with `ledger_append_staged`, instead of passing every value as an array parameter of `ledger_append`.
 *
 * - The staging tables are UNLOGGED (no WAL: a crash loses only rows of transactions that never committed) and
 *   only ever hold rows of open transactions: the importer COPYs a chunk, calls the function and commits in one
 *   transaction, and the function deletes the chunk's rows before it returns. Other sessions never see them
 *   (MVCC); `batch` keys a chunk so that the function reads its own rows through the index, not the dead rows of
 *   earlier chunks that autovacuum has not reclaimed yet.
 * - `ledger_app` may INSERT (COPY) into them and nothing else; the store itself is still written only by a
 *   SECURITY DEFINER function, as `ledger_append` is (see 20261201000400_database_roles).
 * - The function follows `ledger_append` step for step (same dedupe on both unique indexes, same lock order,
 *   same version and hash rule: sha256(previous hash || "<version>:" || content)), so a bulk-imported event is
 *   byte for byte the event the live path would have written. What differs: it reads its input from the staging
 *   tables with hash joins (nested loops are switched off for its statements: the staging tables have no
 *   statistics worth planning on, and a nested loop over a chunk of thousands is quadratic), it collects its
 *   per-event results by subscript (expanded arrays, constant time) rather than by concatenation, and it answers
 *   with the chunk's counts instead of a row per delivery.
 */
export async function up(db: Kysely<any>): Promise<void> {
  const {
    rows: [{ schema }],
  } = await sql<{ schema: string }>`SELECT current_schema() AS schema`.execute(db);

  // Dead rows are reclaimed early: every chunk deletes what it staged.
  await sql`
    CREATE UNLOGGED TABLE import_staged_receipts (
      batch uuid NOT NULL,
      ord int NOT NULL,
      provider text NOT NULL,
      body_sha256 bytea NOT NULL,
      dedupe_key bytea NOT NULL,
      body bytea NOT NULL,
      content_type text,
      path text NOT NULL,
      query text NOT NULL,
      headers text NOT NULL,
      remote_addr text,
      received_at timestamptz NOT NULL,
      source text NOT NULL,
      signature_status text NOT NULL,
      signature_timestamp timestamptz
    ) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000)`.execute(db);
  await sql`CREATE INDEX import_staged_receipts_batch ON import_staged_receipts (batch)`.execute(db);
  await sql`
    CREATE UNLOGGED TABLE import_staged_events (
      batch uuid NOT NULL,
      -- The event's ordinal in the chunk (line order): versions are handed out in this order within a stream.
      seq int NOT NULL,
      -- The ordinal of its receipt in the chunk.
      ord int NOT NULL,
      stream_name text NOT NULL,
      event_id uuid NOT NULL,
      type text NOT NULL,
      data text NOT NULL,
      metadata text NOT NULL,
      occurred_at timestamptz,
      received_at timestamptz NOT NULL,
      content text NOT NULL
    ) WITH (autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 10000)`.execute(db);
  await sql`CREATE INDEX import_staged_events_batch ON import_staged_events (batch)`.execute(db);

  await sql`
    CREATE FUNCTION ledger_append_staged(p_batch uuid, p_chain_version smallint)
    RETURNS TABLE (imported int, duplicates int, first_receipt bigint, last_receipt bigint, last_position bigint)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = ${sql.id(schema)}, pg_temp
    SET enable_nestloop = off
    AS $fn$
    DECLARE
      staged int;
      kept_ord int[];
      kept_id bigint[];
      head_name text[];
      head_base int[];
      head_hash bytea[];
      o_seq int[] := '{}';
      o_ver int[] := '{}';
      o_prev bytea[] := '{}';
      o_hash bytea[] := '{}';
      f_name text[] := '{}';
      f_hash bytea[] := '{}';
      n int := 0;
      m int := 0;
      cur text := NULL;
      ver int;
      prev bytea;
      h bytea;
      ev record;
      top bigint;
    BEGIN
      SELECT count(*)::int INTO staged FROM import_staged_receipts s WHERE s.batch = p_batch;

      -- No arbiter: a conflict on either key (exact bytes, or canonical content) makes the delivery a duplicate,
      -- whether the original came live, from an earlier import or from an earlier chunk. Sorted as ledger_append
      -- sorts, so that an import and live batches wait for each other's keys in one order and cannot deadlock.
      WITH ins AS (
        INSERT INTO webhook_receipts (provider, body_sha256, dedupe_key, body, content_type, path, query, headers,
          remote_addr, received_at, source, signature_status, signature_timestamp)
        SELECT s.provider, s.body_sha256, s.dedupe_key, s.body, s.content_type, s.path, s.query, s.headers::jsonb,
          s.remote_addr, s.received_at, s.source, s.signature_status, s.signature_timestamp
        FROM import_staged_receipts s WHERE s.batch = p_batch
        ORDER BY s.provider, s.dedupe_key
        ON CONFLICT DO NOTHING
        RETURNING id, provider, body_sha256
      )
      SELECT array_agg(s.ord ORDER BY s.ord), array_agg(ins.id ORDER BY s.ord) INTO kept_ord, kept_id
      FROM ins JOIN import_staged_receipts s ON s.batch = p_batch AND s.provider = ins.provider AND s.body_sha256 = ins.body_sha256;
      kept_ord := coalesce(kept_ord, '{}');
      kept_id := coalesce(kept_id, '{}');

      IF cardinality(kept_ord) > 0 THEN
        WITH c AS (
          SELECT e.stream_name AS st, count(*)::int AS n
          FROM import_staged_events e JOIN unnest(kept_ord) AS k(o) ON k.o = e.ord
          WHERE e.batch = p_batch GROUP BY e.stream_name
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
          SELECT e.seq, e.stream_name AS st, e.content, hd.base, hd.lh
          FROM import_staged_events e
          JOIN unnest(kept_ord) AS k(o) ON k.o = e.ord
          JOIN unnest(head_name, head_base, head_hash) AS hd(name, base, lh) ON hd.name = e.stream_name
          WHERE e.batch = p_batch
          ORDER BY e.stream_name, e.seq
        LOOP
          IF cur IS DISTINCT FROM ev.st THEN
            IF cur IS NOT NULL THEN
              m := m + 1;
              f_name[m] := cur;
              f_hash[m] := prev;
            END IF;
            cur := ev.st;
            ver := ev.base;
            prev := ev.lh;
          END IF;
          ver := ver + 1;
          h := sha256(coalesce(prev, ''::bytea) || convert_to(ver::text || ':' || ev.content, 'UTF8'));
          n := n + 1;
          o_seq[n] := ev.seq;
          o_ver[n] := ver;
          o_prev[n] := prev;
          o_hash[n] := h;
          prev := h;
        END LOOP;

        IF cur IS NOT NULL THEN
          m := m + 1;
          f_name[m] := cur;
          f_hash[m] := prev;

          WITH ins AS (
            INSERT INTO events (event_id, stream_name, stream_version, type, schema_version, data, metadata, receipt_id,
              occurred_at, received_at, prev_hash, hash, chain_version)
            SELECT e.event_id, e.stream_name, z.v, e.type, 1, e.data::jsonb, e.metadata::jsonb, k.id, e.occurred_at,
              e.received_at, z.ph, z.hh, p_chain_version
            FROM unnest(o_seq, o_ver, o_prev, o_hash) AS z(seq, v, ph, hh)
            JOIN import_staged_events e ON e.batch = p_batch AND e.seq = z.seq
            JOIN unnest(kept_ord, kept_id) AS k(o, id) ON k.o = e.ord
            ORDER BY z.seq
            RETURNING global_position
          )
          SELECT max(ins.global_position) INTO top FROM ins;

          UPDATE streams AS s SET last_hash = f.h FROM unnest(f_name, f_hash) AS f(n, h) WHERE s.stream_name = f.n;
          PERFORM pg_notify('ledger_events', top::text);
        END IF;
      END IF;

      DELETE FROM import_staged_events e WHERE e.batch = p_batch;
      DELETE FROM import_staged_receipts s WHERE s.batch = p_batch;

      RETURN QUERY SELECT cardinality(kept_ord), staged - cardinality(kept_ord),
        (SELECT min(x) FROM unnest(kept_id) AS x), (SELECT max(x) FROM unnest(kept_id) AS x), top;
    END
    $fn$`.execute(db);

  await sql`REVOKE ALL ON FUNCTION ledger_append_staged(uuid, smallint) FROM PUBLIC`.execute(db);
  await sql`REVOKE ALL ON import_staged_receipts, import_staged_events FROM PUBLIC`.execute(db);
  // The roles may be missing (an owner that could not create them): ledger_apply_roles() then warned already.
  await sql`
    DO $$
    BEGIN
      IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ledger_app') THEN
        GRANT INSERT ON import_staged_receipts, import_staged_events TO ledger_app;
        GRANT EXECUTE ON FUNCTION ledger_append_staged(uuid, smallint) TO ledger_app;
      END IF;
    END $$`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP FUNCTION ledger_append_staged(uuid, smallint)`.execute(db);
  await sql`DROP TABLE import_staged_events`.execute(db);
  await sql`DROP TABLE import_staged_receipts`.execute(db);
}
