import { sql, type Kysely } from 'kysely';
import { reapplyRoles, reversed, rewriteFunction } from './rewrite-function.js';

/**
 * The fixed PostgreSQL cost of a `ledger_append` call (issue 14). At 8 deliveries a call the receipt keys' trigger
 * (one plpgsql call and one single-row INSERT statement per receipt) was a tenth of the call, the nested
 * `ledger_ensure_partitions` call (SECURITY DEFINER, its own settings and statement) about 5 %, and the events
 * statement's window aggregates and sorts a large part of its executor start-up, although a live batch mostly
 * gives each stream one event. Every guarantee is unchanged: dedupe under concurrency (the keys are still the
 * gate, inserted sorted, no arbiter), per-stream order and versions under the same sorted head upsert, the same
 * chain (CHAIN_VERSION 3 content, the same link formula), the erasure fence (the receipts table is still locked
 * by the first INSERT statement of the call, which now inserts the keys and the receipts together).
 *
 * What changes relative to the current definitions (20261204000100_account_key, 20261203000500):
 * - `ledger_append` inserts the receipts' `webhook_receipt_keys` rows itself, set-wise, in the statement that
 *   inserts the receipts (keys first, sorted by provider and dedupe key; the receipts of the keys that went in,
 *   with the ids the keys took from the receipts' identity sequence). The trigger `webhook_receipts_key` stays
 *   for every other writer of receipts (the import's `ledger_append_staged`, tests, hand inserts) and is skipped
 *   only while `ledger.receipt_keys` is 'set', which `ledger_append` sets around that statement (transaction-local,
 *   reset right after; an error rolls it back with the transaction or savepoint). `ledger_append_staged` clears
 *   it first, so a session that set it by hand cannot store receipts without keys through the import.
 * - `ledger_ensure_partitions` is called only when a received time falls outside the month this session last
 *   ensured (`ledger.append_months`: schema, month start and end as epoch seconds). A cached month is trusted
 *   only while its end is later than a day ago: `ledger_detach_month` refuses exactly those months, so no
 *   partition the cache vouches for can have been detached.
 * - A batch of new deliveries only (no duplicate among them) with at most 128 events is appended in ONE statement: the sorted head upsert (same row locks, same order) moves
 *   each head's version and hash on by its events (the hash over them by ledger_chain, from the hash the head had),
 *   and the events are inserted from what it returns (PostgreSQL 18's RETURNING old/new: the head's version and
 *   hash before). This drops the separate head statement and the second write of each head (`tails`). When each
 *   stream receives one event the link is written inline (ledger_chain_step's formula, no window aggregates).
 *   Other batches (a duplicate among them, more than 128 events) take the two statements as before.
 *   The highest position is read in the events statement instead of a statement of its own.
 * - A duplicate's original is looked up by each of its two keys through that key's unique index (UNION ALL, the
 *   lowest receipt id as before). Under `(body = s AND ...) OR dedupe_key = dk` the generic plan (the function
 *   forces generic plans, 20261203000400) could use neither index and read all of `webhook_receipt_keys` for
 *   every duplicate in a batch: 12 ms per duplicate at 50,000 keys, growing with the store; a live batch with a
 *   provider's retry in it paid that (the ingest's PGSS: 7 ms per call of that statement at a few thousand keys).
 */

const ENSURE_BEFORE = `      PERFORM ledger_ensure_partitions(r_received);`;
const ENSURE_AFTER = `      -- ledger.append_months caches the month last ensured by this session (schema|start|end, epoch seconds);
      -- trusted while its end is later than a day ago, since ledger_detach_month refuses such months.
      IF months IS NULL OR split_part(months, '|', 1) <> current_schema()
        OR to_timestamp(split_part(months, '|', 3)::float8) <= now() - interval '1 day'
        OR NOT (to_timestamp(split_part(months, '|', 2)::float8) <= ALL (r_received)
          AND to_timestamp(split_part(months, '|', 3)::float8) > ALL (r_received)) THEN
        PERFORM ledger_ensure_partitions(r_received);
        SELECT date_trunc('month', min(a) AT TIME ZONE 'UTC'), date_trunc('month', max(a) AT TIME ZONE 'UTC')
        INTO month_lo, month_hi FROM unnest(r_received) AS a;
        IF month_lo = month_hi THEN
          PERFORM set_config('ledger.append_months', current_schema() || '|'
            || extract(epoch FROM month_lo AT TIME ZONE 'UTC')::text || '|'
            || extract(epoch FROM (month_lo + interval '1 month') AT TIME ZONE 'UTC')::text, false);
        END IF;
      END IF;`;

const DECLARE_BEFORE = `      p_types text[] := '{}';
    BEGIN`;
const DECLARE_AFTER = `      p_types text[] := '{}';
      n_streams int;
      months text := current_setting('ledger.append_months', true);
      month_lo timestamp;
      month_hi timestamp;
    BEGIN`;

const RECEIPTS_BEFORE = `      WITH ins AS (
        INSERT INTO webhook_receipts (provider, body_sha256, dedupe_key, body, content_type, path, query, headers,
          remote_addr, received_at, source, signature_status, signature_timestamp, account_key)
        SELECT t.p, t.s, t.dk, t.b, t.ct, t.pa, t.q, t.hd::jsonb, t.ra, t.rcv, t.src, t.ss, t.sts, t.ak
        FROM unnest(r_provider, r_sha, r_dedupe, r_body, r_content_type, r_path, r_query, r_headers, r_remote,
          r_received, r_source, r_sig_status, r_sig_ts, r_account)
          WITH ORDINALITY AS t(p, s, dk, b, ct, pa, q, hd, ra, rcv, src, ss, sts, ak, o)
        ORDER BY t.p, t.dk
        ON CONFLICT DO NOTHING
        RETURNING id, provider, coalesce(dedupe_key, body_sha256) AS dk
      )
      -- Matched back by dedupe key, not body: GET deliveries all have the same (empty) body.
      SELECT array_agg(k.o ORDER BY k.o), array_agg(ins.id ORDER BY k.o) INTO kept_ord, kept_id
      FROM ins JOIN unnest(r_provider, r_dedupe) WITH ORDINALITY AS k(p, dk, o) ON k.p = ins.provider AND k.dk = ins.dk;`;
const receiptsAfter = (seq: string) => `      -- The keys are the gate, inserted here in one statement (the trigger that does it row by row for other
      -- writers is skipped while ledger.receipt_keys is 'set'); the receipts take the ids their keys took.
      PERFORM set_config('ledger.receipt_keys', 'set', true);
      WITH t AS (
        SELECT * FROM unnest(r_provider, r_sha, r_dedupe, r_body, r_content_type, r_path, r_query, r_headers, r_remote,
          r_received, r_source, r_sig_status, r_sig_ts, r_account)
          WITH ORDINALITY AS t(p, s, dk, b, ct, pa, q, hd, ra, rcv, src, ss, sts, ak, o)
      ), k AS (
        INSERT INTO webhook_receipt_keys (receipt_id, provider, body_sha256, dedupe_key, received_at, account_key)
        SELECT nextval(${sqlLiteral(seq)}::regclass), t.p, t.s, coalesce(t.dk, t.s), t.rcv, t.ak FROM t
        ORDER BY t.p, t.dk
        ON CONFLICT DO NOTHING
        RETURNING webhook_receipt_keys.receipt_id AS id, webhook_receipt_keys.provider AS p, webhook_receipt_keys.dedupe_key AS dk
      ), kt AS (
        -- Matched back by dedupe key, not body: GET deliveries all have the same (empty) body. One delivery per
        -- key: a copy later in the same batch (appendBatch sends none) is answered as a duplicate, not stored.
        SELECT DISTINCT ON (k.id) t.*, k.id
        FROM k JOIN t ON t.p = k.p AND coalesce(t.dk, t.s) = k.dk
        ORDER BY k.id, t.o
      ), ins AS (
        INSERT INTO webhook_receipts (id, provider, body_sha256, dedupe_key, body, content_type, path, query, headers,
          remote_addr, received_at, source, signature_status, signature_timestamp, account_key)
        OVERRIDING SYSTEM VALUE
        SELECT kt.id, kt.p, kt.s, kt.dk, kt.b, kt.ct, kt.pa, kt.q, kt.hd::jsonb, kt.ra, kt.rcv, kt.src, kt.ss, kt.sts, kt.ak
        FROM kt
      )
      -- And how many streams the events go to (one event each when there are as many as events).
      SELECT array_agg(kt.o ORDER BY kt.o), array_agg(kt.id ORDER BY kt.o), (SELECT count(DISTINCT u.st) FROM unnest(e_stream) AS u(st))
      INTO kept_ord, kept_id, n_streams FROM kt;
      PERFORM set_config('ledger.receipt_keys', '', true);`;

/**
 * The end of both one-statement paths: from the events `ins` inserted, each kept delivery's highest position and
 * event types, and the batch's highest position.
 */
const PER_DELIVERY = `), per AS (
            SELECT ins.rid, max(ins.gp) AS pos, array_agg(ins.ty ORDER BY ins.gp) AS types
            FROM ins GROUP BY ins.rid
          )
          SELECT array_agg(kid.o), array_agg(per.pos), array_agg(array_to_string(per.types, ',')), max(per.pos)
          INTO p_ord, p_pos, p_types, top
          FROM per JOIN unnest(kept_ord, kept_id) AS kid(o, id) ON kid.id = per.rid;`;

const HEADS_BEFORE = `      IF cardinality(kept_ord) > 0 AND cardinality(e_owner) > 0 THEN
`;
const HEADS_AFTER = `      IF cardinality(kept_ord) > 0 AND cardinality(e_owner) > 0 THEN
        IF cardinality(kept_ord) = cardinality(r_provider) AND n_streams = cardinality(e_stream) AND n_streams <= 128 THEN
          -- Every delivery is new and each stream receives one event (single-event deliveries on distinct legs): the sorted head
          -- upsert (the same row locks, in the same order) also moves the head's hash on by the event's link, and
          -- the events are inserted from what it returns, in one statement and one write of each head. The link is
          -- ledger_chain_step's: sha256(previous hash or nothing || version ':' content). The content of a
          -- conflicting head's event is found by its stream name (unique in the batch, hence the size bound:
          -- array_position scans the names).
          WITH up AS (
            INSERT INTO streams AS s (stream_name, version, account_key, last_hash)
            SELECT x.st, 1, r_account[x.ow], sha256(convert_to('1:' || x.content, 'UTF8'))
            FROM unnest(e_owner, e_stream, e_content) AS x(ow, st, content)
            ORDER BY x.st
            ON CONFLICT (stream_name) DO UPDATE SET version = s.version + 1,
              last_hash = sha256(coalesce(s.last_hash, ''::bytea)
                || convert_to((s.version + 1)::text || ':' || e_content[array_position(e_stream, EXCLUDED.stream_name)], 'UTF8'))
            RETURNING new.stream_name AS st, new.version AS ver, old.last_hash AS ph, new.last_hash AS h, new.account_key AS ak
          ), ins AS (
            INSERT INTO events (event_id, stream_name, stream_version, type, schema_version, data, metadata, receipt_id,
              occurred_at, received_at, prev_hash, hash, chain_version, account_key)
            SELECT x.eid, x.st, up.ver, x.ty, 1, x.d::jsonb, x.m::jsonb, kid.id, x.occ, r_received[x.ow], up.ph, up.h, e_chain_version, up.ak
            FROM unnest(e_owner, e_stream, e_event_id, e_type, e_data, e_metadata, e_occurred)
              WITH ORDINALITY AS x(ow, st, eid, ty, d, m, occ, o)
            JOIN up ON up.st = x.st
            JOIN unnest(kept_ord, kept_id) AS kid(o, id) ON kid.o = x.ow
            ORDER BY x.o
            RETURNING events.receipt_id AS rid, events.global_position AS gp, events.type AS ty
          ${PER_DELIVERY}
        ELSIF cardinality(kept_ord) = cardinality(r_provider) AND cardinality(e_stream) <= 128 THEN
          -- Every delivery is new, streams get several events: the same one statement, the head moved on by its n
          -- events (ledger_chain over them, in batch order, from the hash the head had; a stream's events found by
          -- its name, hence the size bound) and the events chained in the statement's own windows from what the
          -- upsert returns (the version and hash the head had).
          WITH g AS (
            SELECT x.st, count(*)::int AS n, min(x.ow) AS ow FROM unnest(e_owner, e_stream) AS x(ow, st) GROUP BY x.st
          ), up AS (
            INSERT INTO streams AS s (stream_name, version, account_key, last_hash)
            SELECT g.st, g.n, r_account[g.ow],
              (SELECT ledger_chain(NULL::bytea, u.k::int, u.c ORDER BY u.o)
               FROM (SELECT v.c, v.o, row_number() OVER (ORDER BY v.o) AS k
                     FROM unnest(e_stream, e_content) WITH ORDINALITY AS v(st, c, o) WHERE v.st = g.st) AS u)
            FROM g ORDER BY g.st
            ON CONFLICT (stream_name) DO UPDATE SET version = s.version + EXCLUDED.version,
              last_hash = (SELECT ledger_chain(s.last_hash, s.version + u.k::int, u.c ORDER BY u.o)
                FROM (SELECT v.c, v.o, row_number() OVER (ORDER BY v.o) AS k
                      FROM unnest(e_stream, e_content) WITH ORDINALITY AS v(st, c, o) WHERE v.st = EXCLUDED.stream_name) AS u)
            RETURNING new.stream_name AS st, coalesce(old.version, 0) AS base, old.last_hash AS lh, new.account_key AS ak
          ), ev AS (
            SELECT x.o, x.st, x.eid, x.ty, x.d, x.m, x.occ, x.ow, x.content, up.lh, up.ak,
              up.base + row_number() OVER (PARTITION BY x.st ORDER BY x.o)::int AS ver
            FROM unnest(e_owner, e_stream, e_event_id, e_type, e_data, e_metadata, e_occurred, e_content)
              WITH ORDINALITY AS x(ow, st, eid, ty, d, m, occ, content, o)
            JOIN up ON up.st = x.st
          ), chained AS (
            SELECT ev.*, ledger_chain(ev.lh, ev.ver, ev.content) OVER (PARTITION BY ev.st ORDER BY ev.o ROWS UNBOUNDED PRECEDING) AS h
            FROM ev
          ), linked AS (
            SELECT chained.*, coalesce(lag(chained.h) OVER (PARTITION BY chained.st ORDER BY chained.o), chained.lh) AS ph
            FROM chained
          ), ins AS (
            INSERT INTO events (event_id, stream_name, stream_version, type, schema_version, data, metadata, receipt_id,
              occurred_at, received_at, prev_hash, hash, chain_version, account_key)
            SELECT z.eid, z.st, z.ver, z.ty, 1, z.d::jsonb, z.m::jsonb, kid.id, z.occ, r_received[z.ow], z.ph, z.h, e_chain_version, z.ak
            FROM linked AS z
            JOIN unnest(kept_ord, kept_id) AS kid(o, id) ON kid.o = z.ow
            ORDER BY z.o
            RETURNING events.receipt_id AS rid, events.global_position AS gp, events.type AS ty
          ${PER_DELIVERY}
        ELSE
`;

const TOP_BEFORE = `        SELECT array_agg(kid.o), array_agg(per.pos), array_agg(array_to_string(per.types, ','))
        INTO p_ord, p_pos, p_types
        FROM per JOIN unnest(kept_ord, kept_id) AS kid(o, id) ON kid.id = per.rid;

        SELECT max(v) INTO top FROM unnest(p_pos) AS v;`;
const TOP_AFTER = `        SELECT array_agg(kid.o), array_agg(per.pos), array_agg(array_to_string(per.types, ',')), max(per.pos)
        INTO p_ord, p_pos, p_types, top
        FROM per JOIN unnest(kept_ord, kept_id) AS kid(o, id) ON kid.id = per.rid;
        END IF;
`;

const DUPLICATE_BEFORE = `        SELECT w.receipt_id AS id, w.received_at FROM webhook_receipt_keys w
        WHERE w.provider = k.p AND ((w.body_sha256 = k.s AND k.s <> sha256(''::bytea)) OR w.dedupe_key = k.dk)
        ORDER BY w.receipt_id LIMIT 1`;
const DUPLICATE_AFTER = `        -- Each key by its own unique index: under the OR the generic plan read the whole key table per duplicate.
        SELECT u.id, u.received_at FROM (
          SELECT w.receipt_id AS id, w.received_at FROM webhook_receipt_keys w WHERE w.provider = k.p AND w.dedupe_key = k.dk
          UNION ALL
          SELECT w.receipt_id, w.received_at FROM webhook_receipt_keys w
          WHERE w.provider = k.p AND w.body_sha256 = k.s AND w.body_sha256 <> sha256(''::bytea)
        ) AS u
        ORDER BY u.id LIMIT 1`;

const STAGED_BEFORE = `      SELECT count(*)::int INTO staged FROM import_staged_receipts s WHERE s.batch = p_batch;`;
const STAGED_AFTER = `      -- Receipts inserted here get their keys from the trigger, which ledger.receipt_keys = 'set' would skip.
      PERFORM set_config('ledger.receipt_keys', '', true);
      SELECT count(*)::int INTO staged FROM import_staged_receipts s WHERE s.batch = p_batch;`;

const TRIGGER_WHEN = `current_setting('ledger.receipt_keys', true) IS DISTINCT FROM 'set'`;

const sqlLiteral = (s: string) => `'${s.replace(/'/g, "''")}'`;

const APPEND = 'ledger_append(text[],bytea[],bytea[],bytea[],text[],text[],text[],text[],text[],timestamptz[],text[],text[],timestamptz[],int[],text[],uuid[],text[],text[],text[],timestamptz[],text[],smallint,text[])';

const appendEdits = (seq: string): [string, string][] => [
  [DECLARE_BEFORE, DECLARE_AFTER],
  [ENSURE_BEFORE, ENSURE_AFTER],
  [RECEIPTS_BEFORE, receiptsAfter(seq)],
  [HEADS_BEFORE, HEADS_AFTER],
  [TOP_BEFORE, TOP_AFTER],
  [DUPLICATE_BEFORE, DUPLICATE_AFTER],
];

/** The receipts' identity sequence, by its name at migration time (the partitioned store renamed it once). */
const receiptSequence = async (db: Kysely<any>): Promise<string> => {
  const {
    rows: [row],
  } = await sql<{ seq: string }>`SELECT pg_get_serial_sequence('webhook_receipts', 'id') AS seq`.execute(db);
  if (!row?.seq) throw new Error('webhook_receipts.id has no identity sequence');
  return row.seq;
};

export async function up(db: Kysely<any>): Promise<void> {
  const seq = await receiptSequence(db);
  await rewriteFunction(APPEND, appendEdits(seq)).execute(db);
  await rewriteFunction('ledger_append_staged(uuid,smallint)', [[STAGED_BEFORE, STAGED_AFTER]]).execute(db);
  await sql`DROP TRIGGER webhook_receipts_key ON webhook_receipts`.execute(db);
  await sql`
    CREATE TRIGGER webhook_receipts_key BEFORE INSERT ON webhook_receipts
    FOR EACH ROW WHEN (${sql.raw(TRIGGER_WHEN)}) EXECUTE FUNCTION ledger_receipt_key()`.execute(db);
  await reapplyRoles(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  const seq = await receiptSequence(db);
  await sql`DROP TRIGGER webhook_receipts_key ON webhook_receipts`.execute(db);
  await sql`CREATE TRIGGER webhook_receipts_key BEFORE INSERT ON webhook_receipts FOR EACH ROW EXECUTE FUNCTION ledger_receipt_key()`.execute(db);
  await rewriteFunction('ledger_append_staged(uuid,smallint)', [[STAGED_AFTER, STAGED_BEFORE]]).execute(db);
  await rewriteFunction(APPEND, reversed(appendEdits(seq)).reverse()).execute(db);
  await reapplyRoles(db);
}
