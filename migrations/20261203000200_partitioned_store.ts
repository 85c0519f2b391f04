import { sql, type Kysely } from 'kysely';
import { reapplyRoles, reversed, rewriteFunction } from './rewrite-function.js';

/** sha256 of zero bytes: the body of every GET delivery (20261202000800_get_deliveries). */
const EMPTY_SHA256 = "sha256(''::bytea)";

/** Months created ahead of the current one by the migration (the service keeps LEDGER_PARTITIONS_AHEAD ahead). */
const AHEAD_MONTHS = 3;

/**
 * Edits of the CURRENT definitions of the two receipt-writing appends, applied to their stored text
 * (pg_get_functiondef) so that they compose with whatever earlier migrations made of them. Each pair is
 * [text that must be there, its replacement]; `down` applies them in reverse.
 *
 * ledger_append (the 22-argument delivery append), relative to 20261202000800_get_deliveries:
 * 1. first statement: `PERFORM ledger_ensure_partitions(r_received)` (the months of the batch exist);
 * 2. a duplicate's original is found in `webhook_receipt_keys` (the global dedupe table) instead of the
 *    partitioned receipts, and its events are read in its own month only (`e.received_at = r.received_at`:
 *    the partition pruned at run time);
 * 3. the answer's two halves (new deliveries, duplicates) are two RETURN QUERY statements instead of one UNION ALL,
 *    the second only when the batch has duplicates: planning the duplicates' read of the partitioned tables on
 *    every call cost about 190 µs of PostgreSQL CPU per call (pg_stat_statements, bench/append.probe.ts).
 * ledger_append_staged (bulk import), relative to 20261202000300_bulk_import:
 * 1. first statement: ensures the months of the staged receipts.
 * ledger_erase_guard (where 20261203000100_erasure made it): asks for the partitioned table's name, not the partition's.
 * Nothing else changes: the receipt INSERT keeps `ON CONFLICT DO NOTHING` (the duplicate is now skipped by the
 * `webhook_receipts_key` trigger, with the same wait-for-the-other-transaction semantics), versions and hashes
 * are computed as before.
 */
const APPEND_EDITS: [string, string][] = [
  [
    `      -- No arbiter: a conflict on either key (exact bytes, or canonical content) makes the delivery a duplicate.`,
    `      -- The months of the batch must exist as partitions (a no-op probe of ledger_partitions when they do).
      PERFORM ledger_ensure_partitions(r_received);
      -- No arbiter: a conflict on either key (exact bytes, or canonical content) makes the delivery a duplicate.`,
  ],
  [
    `        SELECT w.id FROM webhook_receipts w
        WHERE w.provider = k.p AND ((w.body_sha256 = k.s AND k.s <> ${EMPTY_SHA256}) OR coalesce(w.dedupe_key, w.body_sha256) = k.dk)
        ORDER BY w.id LIMIT 1`,
    `        SELECT w.receipt_id AS id, w.received_at FROM webhook_receipt_keys w
        WHERE w.provider = k.p AND ((w.body_sha256 = k.s AND k.s <> ${EMPTY_SHA256}) OR w.dedupe_key = k.dk)
        ORDER BY w.receipt_id LIMIT 1`,
  ],
  [`FROM events e WHERE e.receipt_id = r.id`, `FROM events e WHERE e.receipt_id = r.id AND e.received_at = r.received_at`],
  [
    `      UNION ALL
      SELECT k.o::int, r.id, true, agg.pos`,
    `;
      -- Only a batch with duplicates plans the lookup of their originals (a read of the partitioned tables).
      IF cardinality(kept_ord) < cardinality(r_provider) THEN
      RETURN QUERY
      SELECT k.o::int, r.id, true, agg.pos`,
  ],
  [
    `      WHERE NOT (k.o = ANY (kept_ord));
    END`,
    `      WHERE NOT (k.o = ANY (kept_ord));
      END IF;
    END`,
  ],
];
const STAGED_EDITS: [string, string][] = [
  [
    `      SELECT count(*)::int INTO staged FROM import_staged_receipts s WHERE s.batch = p_batch;`,
    `      SELECT count(*)::int INTO staged FROM import_staged_receipts s WHERE s.batch = p_batch;
      PERFORM ledger_ensure_partitions(ARRAY(SELECT s.received_at FROM import_staged_receipts s WHERE s.batch = p_batch));`,
  ],
];
const APPEND_SIGNATURE =
  'ledger_append(text[], bytea[], bytea[], bytea[], text[], text[], text[], text[], text[], timestamptz[], text[], text[], timestamptz[], int[], text[], uuid[], text[], text[], text[], timestamptz[], text[], smallint)';
const STAGED_SIGNATURE = 'ledger_append_staged(uuid, smallint)';

/**
 * Recreates on `to` the triggers of `from` (their stored definitions: whatever earlier migrations made of the
 * append-only rules, e.g. the erasure's split of UPDATE and DELETE), leaving out internal ones (foreign keys) and
 * those named in `except`.
 */
const copyTriggers = (from: string, to: string, except: string[] = []) => sql`
  DO $do$
  DECLARE t record;
  BEGIN
    FOR t IN SELECT g.oid, g.tgname FROM pg_trigger g WHERE g.tgrelid = ${sql.lit(from)}::regclass AND NOT g.tgisinternal LOOP
      CONTINUE WHEN t.tgname = ANY (ARRAY[${sql.join([...except, ''].map((e) => sql.lit(e)))}]);
      EXECUTE replace(replace(pg_get_triggerdef(t.oid), ' ON ' || quote_ident(current_schema()) || '.' || ${sql.lit(`${from} `)}, ${sql.lit(` ON ${to} `)}),
        ${sql.lit(` ON ${from} `)}, ${sql.lit(` ON ${to} `)});
    END LOOP;
  END $do$`;

/**
 * The erasure's UPDATE guard (20261203000100_erasure), where it exists, tells the two tables apart by TG_TABLE_NAME,
 * which on a partition is the partition's name: it is made to ask for the partitioned table's name instead.
 */
const GUARD_FROM = `CASE TG_TABLE_NAME WHEN 'events'`;
const GUARD_TO = `CASE (SELECT c.relname FROM pg_class c WHERE c.oid = coalesce(pg_partition_root(TG_RELID), TG_RELID)) WHEN 'events'`;


/**
 * The partitioned store (issue 16): `webhook_receipts` and `events` become partitioned by RANGE (received_at),
 * one partition per calendar month in UTC (`webhook_receipts_p2026m12`, `events_p2026m12`), so that retention can
 * archive and drop whole months and no index grows with the whole history.
 *
 * What keeps its guarantees across partitions (a unique index on a partitioned table must contain the partition key):
 * - Dedupe: `webhook_receipt_keys` (not partitioned) holds each receipt's (provider, body sha256) and
 *   (provider, coalesce(dedupe key, body sha256)) under the two unique indexes the receipts table had; the
 *   BEFORE INSERT trigger `webhook_receipts_key` inserts the key with ON CONFLICT DO NOTHING and skips the receipt
 *   when the key was taken (waiting, as a unique index does, for a concurrent inserter of the same key). Keys are
 *   kept when a month is dropped by retention: a re-delivery of an archived webhook stays a duplicate.
 * - Foreign keys: events(receipt_id) and receipt_translations(receipt_id) reference `webhook_receipt_keys`. An event
 *   is always in its receipt's month: all three appends write the receipt's received_at on its events.
 * - Per-stream order: the `streams` heads hand out versions under a row lock (unchanged); each events partition has
 *   a unique (stream_name, stream_version) index (a partition-local guard: the head row is the global one).
 * - The commit-order cursor: `transaction_id` and `global_position` are copied as they are; `events_commit_order`
 *   is a partitioned index, read as a merge of the partitions' indexes.
 * - The chain: rows are copied byte for byte; nothing that is hashed changes.
 * - Append-only: the old tables' triggers are recreated on the partitioned ones from their stored definitions (so
 *   whatever an earlier migration made of them comes along), row triggers are cloned onto every partition, and each
 *   partition gets a no-truncate trigger of its own.
 *
 * Partitions are made by `ledger_ensure_partitions(timestamptz[])` (SECURITY DEFINER, granted to ledger_app): the
 * months of the given instants that are missing are created as plain tables and ATTACHed (a SHARE UPDATE EXCLUSIVE
 * lock on the parent: appends and reads go on meanwhile), under an advisory lock so that two callers do not race.
 * The appends call it for the months of their batch; the service calls it at start and periodically for the months
 * ahead (LEDGER_PARTITIONS_AHEAD). `ledger_partitions` lists the months made.
 *
 * An existing store is migrated in place: the tables are renamed, the partitioned ones created with the same columns
 * (LIKE, so columns other migrations added come along), the rows copied with their identities, xids and hashes,
 * the old tables dropped.
 */
export async function up(db: Kysely<any>): Promise<void> {
  const {
    rows: [{ schema }],
  } = await sql<{ schema: string }>`SELECT current_schema() AS schema`.execute(db);

  await sql`
    CREATE TABLE ledger_partitions (
      -- First day of the month, UTC; the partitions hold received_at in [month, month + 1 month).
      month date PRIMARY KEY,
      created_at timestamptz NOT NULL DEFAULT now()
    )`.execute(db);

  await sql`
    CREATE TABLE webhook_receipt_keys (
      receipt_id bigint PRIMARY KEY,
      provider text NOT NULL,
      body_sha256 bytea NOT NULL,
      -- coalesce(webhook_receipts.dedupe_key, body_sha256)
      dedupe_key bytea NOT NULL,
      received_at timestamptz NOT NULL
    )`.execute(db);

  // The old tables step aside with their indexes and identity sequences (names are per schema).
  await sql`
    DO $$
    DECLARE r record;
    BEGIN
      FOR r IN SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid IN ('events'::regclass, 'webhook_receipts'::regclass) LOOP
        EXECUTE format('ALTER INDEX %I RENAME TO %I', r.relname, r.relname || '_unpart');
      END LOOP;
      EXECUTE format('ALTER SEQUENCE %s RENAME TO events_global_position_seq_unpart', pg_get_serial_sequence('events', 'global_position'));
      EXECUTE format('ALTER SEQUENCE %s RENAME TO webhook_receipts_id_seq_unpart', pg_get_serial_sequence('webhook_receipts', 'id'));
    END $$`.execute(db);
  await sql`ALTER TABLE events RENAME TO events_unpart`.execute(db);
  await sql`ALTER TABLE webhook_receipts RENAME TO webhook_receipts_unpart`.execute(db);
  await sql`ALTER TABLE receipt_translations DROP CONSTRAINT receipt_translations_receipt_id_fkey`.execute(db);

  await sql`
    CREATE TABLE webhook_receipts (LIKE webhook_receipts_unpart INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (received_at)`.execute(db);
  await sql`ALTER TABLE webhook_receipts ADD CONSTRAINT webhook_receipts_pkey PRIMARY KEY (id, received_at)`.execute(db);
  await sql`
    CREATE TABLE events (LIKE events_unpart INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (received_at)`.execute(db);
  await sql`ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (global_position, received_at)`.execute(db);
  await sql`CREATE INDEX events_commit_order ON events (transaction_id, global_position)`.execute(db);
  await sql`CREATE INDEX events_receipt ON events (receipt_id)`.execute(db);
  await sql`CREATE INDEX events_child_leg ON events ((data->>'childLegId')) WHERE data ? 'childLegId'`.execute(db);

  await sql`
    CREATE FUNCTION ledger_create_month(m date) RETURNS void LANGUAGE plpgsql AS $fn$
    DECLARE
      lo timestamptz := m::timestamp AT TIME ZONE 'UTC';
      hi timestamptz := (m + interval '1 month')::timestamp AT TIME ZONE 'UTC';
      sfx text := to_char(m, '"p"YYYY"m"MM');
      t text;
    BEGIN
      IF EXISTS (SELECT 1 FROM ledger_partitions p WHERE p.month = m) THEN RETURN; END IF;
      FOREACH t IN ARRAY ARRAY['webhook_receipts', 'events'] LOOP
        -- Made empty and attached (not CREATE ... PARTITION OF): ATTACH locks the parent SHARE UPDATE EXCLUSIVE only.
        EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)', t || '_' || sfx, t);
        IF t = 'events' THEN
          -- Named by PostgreSQL: a month archived and made again must not collide with its detached table's index.
          EXECUTE format('CREATE UNIQUE INDEX ON %I (stream_name, stream_version)', t || '_' || sfx);
        END IF;
        EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)', t, t || '_' || sfx, lo, hi);
        EXECUTE format('CREATE TRIGGER %I BEFORE TRUNCATE ON %I FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()',
          t || '_' || sfx || '_no_truncate', t || '_' || sfx);
      END LOOP;
      INSERT INTO ledger_partitions (month) VALUES (m);
    END
    $fn$`.execute(db);

  await sql`
    CREATE FUNCTION ledger_ensure_partitions(at timestamptz[]) RETURNS int
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = ${sql.id(schema)}, pg_temp
    -- Called by every append: its probe is planned once, not on each call (a custom plan cost ~100 µs a call).
    SET plan_cache_mode = force_generic_plan AS $fn$
    DECLARE
      missing date[];
      m date;
    BEGIN
      SELECT array_agg(DISTINCT x.m ORDER BY x.m) INTO missing
      FROM (SELECT date_trunc('month', a AT TIME ZONE 'UTC')::date AS m FROM unnest(at) AS a WHERE a IS NOT NULL) x
      WHERE NOT EXISTS (SELECT 1 FROM ledger_partitions p WHERE p.month = x.m);
      IF missing IS NULL THEN RETURN 0; END IF;
      -- One maker at a time; ledger_create_month re-checks under the lock (a fresh snapshot per statement).
      PERFORM pg_advisory_xact_lock(hashtext('ledger_partitions'));
      FOREACH m IN ARRAY missing LOOP
        PERFORM ledger_create_month(m);
      END LOOP;
      RETURN cardinality(missing);
    END
    $fn$`.execute(db);
  await sql`REVOKE ALL ON FUNCTION ledger_ensure_partitions(timestamptz[]) FROM PUBLIC`.execute(db);
  await sql`REVOKE ALL ON FUNCTION ledger_create_month(date) FROM PUBLIC`.execute(db);

  // The months of the existing rows and the months ahead, then the rows, keys set-wise.
  await sql`
    SELECT ledger_ensure_partitions(ARRAY(
      SELECT received_at FROM webhook_receipts_unpart
      UNION SELECT received_at FROM events_unpart
      UNION SELECT generate_series(now(), now() + make_interval(months => ${AHEAD_MONTHS}), interval '1 month')))`.execute(db);
  await sql`INSERT INTO webhook_receipts OVERRIDING SYSTEM VALUE SELECT * FROM webhook_receipts_unpart`.execute(db);
  await sql`
    INSERT INTO webhook_receipt_keys (receipt_id, provider, body_sha256, dedupe_key, received_at)
    SELECT id, provider, body_sha256, coalesce(dedupe_key, body_sha256), received_at FROM webhook_receipts_unpart`.execute(db);
  await sql`INSERT INTO events OVERRIDING SYSTEM VALUE SELECT * FROM events_unpart`.execute(db);
  await sql`SELECT setval(pg_get_serial_sequence('webhook_receipts', 'id'), last_value, is_called) FROM webhook_receipts_id_seq_unpart`.execute(db);
  await sql`SELECT setval(pg_get_serial_sequence('events', 'global_position'), last_value, is_called) FROM events_global_position_seq_unpart`.execute(db);
  // The append-only rules as they are (UPDATE/DELETE/TRUNCATE triggers): row triggers are cloned onto every partition.
  await copyTriggers('events_unpart', 'events').execute(db);
  await copyTriggers('webhook_receipts_unpart', 'webhook_receipts').execute(db);
  await sql`DROP TABLE events_unpart`.execute(db);
  await sql`DROP TABLE webhook_receipts_unpart`.execute(db);

  await sql`CREATE UNIQUE INDEX webhook_receipt_keys_body ON webhook_receipt_keys (provider, body_sha256) WHERE body_sha256 <> ${sql.raw(EMPTY_SHA256)}`.execute(db);
  await sql`CREATE UNIQUE INDEX webhook_receipt_keys_dedupe ON webhook_receipt_keys (provider, dedupe_key)`.execute(db);
  await sql`ALTER TABLE events ADD CONSTRAINT events_receipt_id_fkey FOREIGN KEY (receipt_id) REFERENCES webhook_receipt_keys (receipt_id)`.execute(db);
  await sql`
    ALTER TABLE receipt_translations ADD CONSTRAINT receipt_translations_receipt_id_fkey
    FOREIGN KEY (receipt_id) REFERENCES webhook_receipt_keys (receipt_id)`.execute(db);

  // The dedupe gate: a receipt whose key is taken is not inserted (as ON CONFLICT DO NOTHING did on the table's own
  // unique indexes). Runs as the inserter: the owner, through the SECURITY DEFINER appends.
  await sql`
    CREATE FUNCTION ledger_receipt_key() RETURNS trigger LANGUAGE plpgsql AS $fn$
    BEGIN
      INSERT INTO webhook_receipt_keys (receipt_id, provider, body_sha256, dedupe_key, received_at)
      VALUES (NEW.id, NEW.provider, NEW.body_sha256, coalesce(NEW.dedupe_key, NEW.body_sha256), NEW.received_at)
      ON CONFLICT DO NOTHING;
      IF NOT FOUND THEN RETURN NULL; END IF;
      RETURN NEW;
    END
    $fn$`.execute(db);
  await sql`
    CREATE TRIGGER webhook_receipts_key BEFORE INSERT ON webhook_receipts
    FOR EACH ROW EXECUTE FUNCTION ledger_receipt_key()`.execute(db);
  // The keys are append-only: never changed, never deleted (a dropped month's keys stay).
  await sql`
    CREATE TRIGGER webhook_receipt_keys_append_only BEFORE UPDATE OR DELETE ON webhook_receipt_keys
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()`.execute(db);
  await sql`
    CREATE TRIGGER webhook_receipt_keys_no_truncate BEFORE TRUNCATE ON webhook_receipt_keys
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()`.execute(db);

  await rewriteFunction(APPEND_SIGNATURE, APPEND_EDITS).execute(db);
  await rewriteFunction(STAGED_SIGNATURE, STAGED_EDITS).execute(db);
  await rewriteFunction('ledger_erase_guard()', [[GUARD_FROM, GUARD_TO]], true).execute(db);

  // Grants on the new tables (SELECT for both roles; the store stays written only by the appends) and the
  // appends' SECURITY DEFINER settings; the service may make months ahead.
  await sql`
    DO $$
    BEGIN
      IF EXISTS (SELECT 1 FROM pg_proc WHERE proname = 'ledger_apply_roles' AND pronamespace = current_schema()::regnamespace)
        AND EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ledger_app') THEN
        PERFORM ledger_apply_roles();
        GRANT EXECUTE ON FUNCTION ledger_ensure_partitions(timestamptz[]) TO ledger_app;
      END IF;
    END $$`.execute(db);
}

/** Back to the single tables of 20261202000800 (rows copied back; the partitions and the key table dropped). */
export async function down(db: Kysely<any>): Promise<void> {
  await rewriteFunction('ledger_erase_guard()', [[GUARD_TO, GUARD_FROM]], true).execute(db);
  await rewriteFunction(STAGED_SIGNATURE, reversed(STAGED_EDITS)).execute(db);
  await rewriteFunction(APPEND_SIGNATURE, reversed(APPEND_EDITS)).execute(db);

  await sql`ALTER TABLE receipt_translations DROP CONSTRAINT receipt_translations_receipt_id_fkey`.execute(db);
  await sql`ALTER TABLE events RENAME TO events_part`.execute(db);
  await sql`ALTER TABLE webhook_receipts RENAME TO webhook_receipts_part`.execute(db);
  await sql`
    DO $$
    DECLARE r record;
    BEGIN
      FOR r IN SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid
        WHERE x.indrelid IN ('events_part'::regclass, 'webhook_receipts_part'::regclass) LOOP
        EXECUTE format('ALTER INDEX %I RENAME TO %I', r.relname, r.relname || '_part');
      END LOOP;
      EXECUTE format('ALTER SEQUENCE %s RENAME TO events_global_position_seq_part', pg_get_serial_sequence('events_part', 'global_position'));
      EXECUTE format('ALTER SEQUENCE %s RENAME TO webhook_receipts_id_seq_part', pg_get_serial_sequence('webhook_receipts_part', 'id'));
    END $$`.execute(db);

  await sql`CREATE TABLE webhook_receipts (LIKE webhook_receipts_part INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS)`.execute(db);
  await sql`CREATE TABLE events (LIKE events_part INCLUDING DEFAULTS INCLUDING IDENTITY INCLUDING CONSTRAINTS)`.execute(db);
  await sql`INSERT INTO webhook_receipts OVERRIDING SYSTEM VALUE SELECT * FROM webhook_receipts_part`.execute(db);
  await sql`INSERT INTO events OVERRIDING SYSTEM VALUE SELECT * FROM events_part`.execute(db);
  await sql`SELECT setval(pg_get_serial_sequence('webhook_receipts', 'id'), last_value, is_called) FROM webhook_receipts_id_seq_part`.execute(db);
  await sql`SELECT setval(pg_get_serial_sequence('events', 'global_position'), last_value, is_called) FROM events_global_position_seq_part`.execute(db);
  await copyTriggers('events_part', 'events').execute(db);
  await copyTriggers('webhook_receipts_part', 'webhook_receipts', ['webhook_receipts_key']).execute(db);
  await sql`DROP TABLE events_part`.execute(db);
  await sql`DROP TABLE webhook_receipts_part`.execute(db);
  await sql`DROP TABLE webhook_receipt_keys`.execute(db);
  await sql`DROP TABLE ledger_partitions`.execute(db);
  await sql`DROP FUNCTION ledger_ensure_partitions(timestamptz[])`.execute(db);
  await sql`DROP FUNCTION ledger_create_month(date)`.execute(db);
  await sql`DROP FUNCTION ledger_receipt_key()`.execute(db);

  await sql`ALTER TABLE webhook_receipts ADD CONSTRAINT webhook_receipts_pkey PRIMARY KEY (id)`.execute(db);
  await sql`CREATE UNIQUE INDEX webhook_receipts_dedupe ON webhook_receipts (provider, body_sha256) WHERE body_sha256 <> ${sql.raw(EMPTY_SHA256)}`.execute(db);
  await sql`CREATE UNIQUE INDEX webhook_receipts_dedupe_key ON webhook_receipts (provider, (coalesce(dedupe_key, body_sha256)))`.execute(db);
  await sql`ALTER TABLE events ADD CONSTRAINT events_pkey PRIMARY KEY (global_position)`.execute(db);
  await sql`ALTER TABLE events ADD CONSTRAINT events_stream_version UNIQUE (stream_name, stream_version)`.execute(db);
  await sql`CREATE INDEX events_commit_order ON events (transaction_id, global_position)`.execute(db);
  await sql`CREATE INDEX events_receipt ON events (receipt_id)`.execute(db);
  await sql`CREATE INDEX events_child_leg ON events ((data->>'childLegId')) WHERE data ? 'childLegId'`.execute(db);
  await sql`ALTER TABLE events ADD CONSTRAINT events_receipt_id_fkey FOREIGN KEY (receipt_id) REFERENCES webhook_receipts (id)`.execute(db);
  await sql`
    ALTER TABLE receipt_translations ADD CONSTRAINT receipt_translations_receipt_id_fkey
    FOREIGN KEY (receipt_id) REFERENCES webhook_receipts (id)`.execute(db);
  await reapplyRoles(db);
}
