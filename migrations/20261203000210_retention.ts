import { sql, type Kysely } from 'kysely';

/**
 * Retention of the partitioned store (issue 16): a month whose retention has passed is archived (NDJSON and a
 * signed manifest, written by the service) and dropped as whole partitions, never row by row.
 *
 * - `ledger_archived_runs`: for each stream, each run of consecutive versions that left the live store with an
 *   archived month: its first version, the previous hash it chains from, its last version and hash. A verifier walks
 *   a chain through them (the live chain resumes at a run's last hash) and the archive holds the run's events.
 *   Append-only, like the store.
 * - `ledger_retention_log`: one row per archived month: 'detached' when its partitions left the store (the rows are
 *   in the detached tables, being archived), 'dropped' once the archive was written and the tables dropped, with the
 *   manifest's sha256 and where it was written. Append-only too: a month's history is its two rows.
 * - `ledger_detach_month(month)`: in one transaction, the month's partitions are DETACHed (ACCESS EXCLUSIVE on the
 *   parents for a moment), its runs recorded, the month forgotten by `ledger_partitions` (a late delivery for it
 *   makes a fresh partition, kept until a later run). The detached tables, renamed `<table>_p<YYYY>m<MM>_archiving`, stay until dropped.
 * - `ledger_drop_month(month, manifest sha256, path)`: drops the detached tables of a month in state 'detached'.
 * Both are SECURITY DEFINER (the service's role owns no table) and granted to ledger_app, which can therefore drop a
 * month, but only one that ended more than a day ago, and never without its runs and the log row.
 */
export async function up(db: Kysely<any>): Promise<void> {
  const {
    rows: [{ schema }],
  } = await sql<{ schema: string }>`SELECT current_schema() AS schema`.execute(db);

  await sql`
    CREATE TABLE ledger_archived_runs (
      stream_name text NOT NULL,
      first_version integer NOT NULL,
      prev_hash bytea,
      last_version integer NOT NULL,
      last_hash bytea NOT NULL,
      month date NOT NULL,
      PRIMARY KEY (stream_name, first_version)
    )`.execute(db);
  await sql`
    CREATE TABLE ledger_retention_log (
      id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
      month date NOT NULL,
      state text NOT NULL CHECK (state IN ('detached', 'dropped')),
      at timestamptz NOT NULL DEFAULT now(),
      receipts bigint NOT NULL,
      events bigint NOT NULL,
      -- Runs of archived versions recorded by the detach (the archive's runs.ndjson must list as many).
      runs bigint NOT NULL,
      manifest_sha256 bytea,
      archive_path text
    )`.execute(db);
  for (const table of ['ledger_archived_runs', 'ledger_retention_log']) {
    await sql`
      CREATE TRIGGER ${sql.raw(`${table}_append_only`)} BEFORE UPDATE OR DELETE ON ${sql.table(table)}
      FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change()`.execute(db);
    await sql`
      CREATE TRIGGER ${sql.raw(`${table}_no_truncate`)} BEFORE TRUNCATE ON ${sql.table(table)}
      FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change()`.execute(db);
  }

  await sql`
    CREATE FUNCTION ledger_detach_month(m date) RETURNS TABLE (receipts bigint, events bigint)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = ${sql.id(schema)}, pg_temp AS $fn$
    DECLARE
      sfx text := to_char(m, '"p"YYYY"m"MM');
      n_r bigint;
      n_e bigint;
      n_runs bigint;
    BEGIN
      -- Never a month that may still be written to by the live path (its end less than a day ago, or to come).
      IF (m + interval '1 month')::timestamp AT TIME ZONE 'UTC' > now() - interval '1 day' THEN
        RAISE EXCEPTION 'month % has not ended a day ago: it cannot be dropped', m USING ERRCODE = 'object_not_in_prerequisite_state';
      END IF;
      IF NOT EXISTS (SELECT 1 FROM ledger_partitions p WHERE p.month = m) THEN
        RAISE EXCEPTION 'month % has no partitions', m USING ERRCODE = 'undefined_table';
      END IF;
      IF EXISTS (SELECT 1 FROM ledger_retention_log l WHERE l.month = m AND l.id = (SELECT max(id) FROM ledger_retention_log x WHERE x.month = m) AND l.state = 'detached') THEN
        RAISE EXCEPTION 'month % was detached and is not dropped yet: archive it first', m USING ERRCODE = 'object_not_in_prerequisite_state';
      END IF;
      PERFORM pg_advisory_xact_lock(hashtext('ledger_partitions'));
      EXECUTE format('ALTER TABLE events DETACH PARTITION %I', 'events_' || sfx);
      EXECUTE format('ALTER TABLE webhook_receipts DETACH PARTITION %I', 'webhook_receipts_' || sfx);
      -- Out of the way of a partition a late delivery for the month may make again.
      EXECUTE format('ALTER TABLE %I RENAME TO %I', 'events_' || sfx, 'events_' || sfx || '_archiving');
      EXECUTE format('ALTER TABLE %I RENAME TO %I', 'webhook_receipts_' || sfx, 'webhook_receipts_' || sfx || '_archiving');
      -- Runs of consecutive versions (gaps and islands): a stream's events of one month are usually one run.
      EXECUTE format($q$
        INSERT INTO ledger_archived_runs (stream_name, first_version, prev_hash, last_version, last_hash, month)
        SELECT x.stream_name, min(x.stream_version), (array_agg(x.prev_hash ORDER BY x.stream_version))[1],
          max(x.stream_version), (array_agg(x.hash ORDER BY x.stream_version DESC))[1], %L
        FROM (SELECT e.stream_name, e.stream_version, e.prev_hash, e.hash,
                e.stream_version - row_number() OVER (PARTITION BY e.stream_name ORDER BY e.stream_version) AS g
              FROM %I e) x
        GROUP BY x.stream_name, x.g$q$, m, 'events_' || sfx || '_archiving');
      GET DIAGNOSTICS n_runs = ROW_COUNT;
      EXECUTE format('SELECT count(*) FROM %I', 'events_' || sfx || '_archiving') INTO n_e;
      EXECUTE format('SELECT count(*) FROM %I', 'webhook_receipts_' || sfx || '_archiving') INTO n_r;
      DELETE FROM ledger_partitions p WHERE p.month = m;
      INSERT INTO ledger_retention_log (month, state, receipts, events, runs) VALUES (m, 'detached', n_r, n_e, n_runs);
      RETURN QUERY SELECT n_r, n_e;
    END
    $fn$`.execute(db);

  await sql`
    CREATE FUNCTION ledger_drop_month(m date, manifest_sha256 bytea, archive_path text) RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = ${sql.id(schema)}, pg_temp AS $fn$
    DECLARE
      sfx text := to_char(m, '"p"YYYY"m"MM') || '_archiving';
      d ledger_retention_log;
    BEGIN
      -- A month made again by a late delivery may be archived again later: its latest row decides.
      SELECT * INTO d FROM ledger_retention_log l WHERE l.month = m ORDER BY l.id DESC LIMIT 1;
      IF NOT FOUND OR d.state <> 'detached' THEN
        RAISE EXCEPTION 'month % is not detached and waiting to be dropped', m USING ERRCODE = 'object_not_in_prerequisite_state';
      END IF;
      -- Only tables that are no longer partitions of the store (ledger_detach_month made them so).
      IF EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid IN (to_regclass('events_' || sfx), to_regclass('webhook_receipts_' || sfx))) THEN
        RAISE EXCEPTION 'the tables of month % are partitions of the store', m;
      END IF;
      EXECUTE format('DROP TABLE %I', 'events_' || sfx);
      EXECUTE format('DROP TABLE %I', 'webhook_receipts_' || sfx);
      INSERT INTO ledger_retention_log (month, state, receipts, events, runs, manifest_sha256, archive_path)
      VALUES (m, 'dropped', d.receipts, d.events, d.runs, manifest_sha256, archive_path);
    END
    $fn$`.execute(db);

  await sql`REVOKE ALL ON FUNCTION ledger_detach_month(date) FROM PUBLIC`.execute(db);
  await sql`REVOKE ALL ON FUNCTION ledger_drop_month(date, bytea, text) FROM PUBLIC`.execute(db);
  await sql`
    DO $$
    BEGIN
      IF EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'ledger_app') THEN
        GRANT EXECUTE ON FUNCTION ledger_detach_month(date) TO ledger_app;
        GRANT EXECUTE ON FUNCTION ledger_drop_month(date, bytea, text) TO ledger_app;
      END IF;
    END $$`.execute(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await sql`DROP FUNCTION ledger_drop_month(date, bytea, text)`.execute(db);
  await sql`DROP FUNCTION ledger_detach_month(date)`.execute(db);
  await sql`DROP TABLE ledger_retention_log`.execute(db);
  await sql`DROP TABLE ledger_archived_runs`.execute(db);
}
