import { sql, type Kysely } from 'kysely';
import { reapplyRoles, reversed, rewriteFunction } from './rewrite-function.js';

/**
 * `account_key` on the store's tables (issue 16, docs/scaling.md "What the schema must carry now"): the key a
 * later distribution of the store by account (Citus) shards on, written with every row now so that the move needs
 * no rewrite of the store. `<provider>:<account id>` (FreeClimb accountId, Twilio/Restcomm AccountSid, jambonz
 * account_sid, as the translators read it into each event's `accountId`), or `<provider>:` when the delivery names
 * none. It is not hashed: the chain (rule 3) is unchanged.
 *
 * Which row gets which key:
 * - a receipt (`webhook_receipts`, its dedupe row in `webhook_receipt_keys`): its delivery's, computed in Node from
 *   the first event that names an account (event-store account-key.ts), once per delivery;
 * - a stream head (`streams`): the key of the delivery that made the head (its version 1), kept ever after;
 * - an event: its stream head's key, taken from the head row in SQL (a later delivery of the leg that names another
 *   account still goes to the leg's key: a stream never has two keys);
 * - `receipt_translations`: its receipt's; the staging tables: their delivery's.
 *
 * Backfill of a store written before: receipts from their events' `metadata->>'accountId'` (the first that names
 * one, in position order: what the live path reads), heads from the receipt of their first event still stored,
 * events from their head, the rest from their receipt. A dedupe row whose receipt left with an archived month keeps
 * `<provider>:` (the live store no longer holds its account). The append-only triggers are switched off for the
 * backfill's UPDATEs only (the migration's transaction holds the tables ACCESS EXCLUSIVE meanwhile).
 *
 * Keys that include it (on one PostgreSQL they are exactly as strong as before: each row's key is a function of
 * columns the old key already held, or, for events, of the stream head the append takes it from):
 * - `webhook_receipts` PK (id, received_at, account_key); `events` PK (global_position, received_at, account_key);
 *   each events month's unique (stream_name, stream_version, account_key) (ledger_create_month makes new months so);
 *   `receipt_translations` PK (receipt_id, version, account_key). account_key goes last: every lookup by id,
 *   position or stream keeps its index.
 * Keys that do not, and why (docs/scaling.md): the dedupe indexes of `webhook_receipt_keys` stay global
 * (provider, body sha256) and (provider, dedupe key), because the account read from a body is not a function of
 * the dedupe key (a Twilio form variant that signs alike can parse to another AccountSid; a newer translator may read
 * an account an older one did not); its PK stays receipt_id (the target of the events' and translations' FKs, and
 * an event's key is its stream's, not always its receipt's); `streams` stays keyed by stream_name alone (the append's
 * upsert arbiter: a head per (stream, key) would let two keys hand out the same versions).
 *
 * Functions (edited from their stored text, so that they compose with other migrations' edits):
 * - `ledger_append` (delivery append): one more argument, `r_account text[]` (the receipts' keys, after
 *   e_chain_version); the 22-argument signature is replaced by the 23-argument one. Receipts are inserted with
 *   their key, new heads with the key of their first delivery in the batch, events with their head's.
 * - `ledger_append` (re-translation overload, signature unchanged): translation rows and new heads take the receipt's
 *   key from `webhook_receipt_keys`, events their head's.
 * - `ledger_append_staged`: receipts from the staged key, new heads from the first staged event's, events from the head.
 * - `ledger_receipt_key()` (the dedupe trigger): copies the key into `webhook_receipt_keys`.
 * - `ledger_create_month(date)`: a new events month's unique index includes the key (the column itself comes with
 *   LIKE from the parent, NOT NULL included).
 */

const APPEND_22 =
  'ledger_append(text[], bytea[], bytea[], bytea[], text[], text[], text[], text[], text[], timestamptz[], text[], text[], timestamptz[], int[], text[], uuid[], text[], text[], text[], timestamptz[], text[], smallint)';
const APPEND_23 =
  'ledger_append(text[], bytea[], bytea[], bytea[], text[], text[], text[], text[], text[], timestamptz[], text[], text[], timestamptz[], int[], text[], uuid[], text[], text[], text[], timestamptz[], text[], smallint, text[])';
const RETRANSLATE =
  'ledger_append(text, smallint, bigint, bigint, boolean, bigint[], int[], text[], uuid[], text[], text[], text[], timestamptz[], text[], smallint)';
const STAGED = 'ledger_append_staged(uuid, smallint)';

/** Edits shared by the three appends: the head upsert returns the head's key (an existing head keeps its own). */
const headEdits = (keyOfNewHead: string): [string, string][] => [
  [`      head_hash bytea[];`, `      head_hash bytea[];
      head_key text[];`],
  [
    `INSERT INTO streams AS s (stream_name, version)
          SELECT c.st, c.n FROM c ORDER BY c.st`,
    `INSERT INTO streams AS s (stream_name, version, account_key)
          SELECT c.st, c.n, ${keyOfNewHead} FROM c ORDER BY c.st`,
  ],
  [`RETURNING s.stream_name, s.version, s.last_hash`, `RETURNING s.stream_name, s.version, s.last_hash, s.account_key`],
  [
    `SELECT array_agg(up.stream_name), array_agg(up.version - c.n), array_agg(up.last_hash)
        INTO head_name, head_base, head_hash`,
    `SELECT array_agg(up.stream_name), array_agg(up.version - c.n), array_agg(up.last_hash), array_agg(up.account_key)
        INTO head_name, head_base, head_hash, head_key`,
  ],
];

const APPEND_EDITS: [string, string][] = [
  [
    `e_content text[], e_chain_version smallint)
 RETURNS TABLE(ord integer`,
    `e_content text[], e_chain_version smallint, r_account text[])
 RETURNS TABLE(ord integer`,
  ],
  [
    `remote_addr, received_at, source, signature_status, signature_timestamp)
        SELECT t.p, t.s, t.dk, t.b, t.ct, t.pa, t.q, t.hd::jsonb, t.ra, t.rcv, t.src, t.ss, t.sts
`,
    `remote_addr, received_at, source, signature_status, signature_timestamp, account_key)
        SELECT t.p, t.s, t.dk, t.b, t.ct, t.pa, t.q, t.hd::jsonb, t.ra, t.rcv, t.src, t.ss, t.sts, t.ak
`,
  ],
  [
    `r_received, r_source, r_sig_status, r_sig_ts)
          WITH ORDINALITY AS t(p, s, dk, b, ct, pa, q, hd, ra, rcv, src, ss, sts, o)`,
    `r_received, r_source, r_sig_status, r_sig_ts, r_account)
          WITH ORDINALITY AS t(p, s, dk, b, ct, pa, q, hd, ra, rcv, src, ss, sts, ak, o)`,
  ],
  // A new head takes the key of the first delivery of the batch that has events on it (the one its version 1 is of).
  [
    `SELECT x.st, count(*)::int AS n FROM unnest(e_owner, e_stream) AS x(ow, st)`,
    `SELECT x.st, count(*)::int AS n, r_account[min(x.ow)] AS ak FROM unnest(e_owner, e_stream) AS x(ow, st)`,
  ],
  ...headEdits('c.ak'),
  [`SELECT x.o::int AS i, x.st, x.content, hd.lh,`, `SELECT x.o::int AS i, x.st, x.content, hd.lh, hd.ak,`],
  [
    `JOIN unnest(head_name, head_base, head_hash) AS hd(name, base, lh) ON hd.name = x.st`,
    `JOIN unnest(head_name, head_base, head_hash, head_key) AS hd(name, base, lh, ak) ON hd.name = x.st`,
  ],
  [`SELECT ev.i, ev.st, ev.ver, ev.lh,`, `SELECT ev.i, ev.st, ev.ver, ev.lh, ev.ak,`],
  [`SELECT chained.i, chained.st, chained.ver, chained.h,`, `SELECT chained.i, chained.st, chained.ver, chained.h, chained.ak,`],
  [
    `occurred_at, received_at, prev_hash, hash, chain_version)
          SELECT x.eid, x.st, z.ver, x.ty, 1, x.d::jsonb, x.m::jsonb, kid.id, x.occ, r_received[x.ow], z.ph, z.h, e_chain_version
`,
    `occurred_at, received_at, prev_hash, hash, chain_version, account_key)
          SELECT x.eid, x.st, z.ver, x.ty, 1, x.d::jsonb, x.m::jsonb, kid.id, x.occ, r_received[x.ow], z.ph, z.h, e_chain_version, z.ak
`,
  ],
];

const RETRANSLATE_EDITS: [string, string][] = [
  [
    `INSERT INTO receipt_translations (receipt_id, version, supersedes_through, event_count)
        SELECT t.r, p_version,`,
    `INSERT INTO receipt_translations (receipt_id, version, account_key, supersedes_through, event_count)
        SELECT t.r, p_version, (SELECT k.account_key FROM webhook_receipt_keys k WHERE k.receipt_id = t.r),`,
  ],
  [
    `SELECT x.st, count(*)::int AS n FROM unnest(e_owner, e_stream) AS x(ow, st)`,
    `SELECT x.st, count(*)::int AS n, min(x.ow) AS fo FROM unnest(e_owner, e_stream) AS x(ow, st)`,
  ],
  ...headEdits('(SELECT k.account_key FROM webhook_receipt_keys k WHERE k.receipt_id = t_receipt[c.fo])'),
  [
    `occurred_at, received_at, prev_hash, hash, chain_version)
        SELECT x.eid, x.st, z.v, x.ty, 1, x.d::jsonb, x.m::jsonb, w.id, x.occ, w.received_at, z.ph, z.hh, e_chain_version
`,
    `occurred_at, received_at, prev_hash, hash, chain_version, account_key)
        SELECT x.eid, x.st, z.v, x.ty, 1, x.d::jsonb, x.m::jsonb, w.id, x.occ, w.received_at, z.ph, z.hh, e_chain_version, hk.ak
`,
  ],
  [
    `JOIN webhook_receipts w ON w.id = t_receipt[x.ow]`,
    `JOIN webhook_receipts w ON w.id = t_receipt[x.ow]
        JOIN unnest(head_name, head_key) AS hk(name, ak) ON hk.name = x.st`,
  ],
];

const STAGED_EDITS: [string, string][] = [
  [
    `remote_addr, received_at, source, signature_status, signature_timestamp)
        SELECT s.provider,`,
    `remote_addr, received_at, source, signature_status, signature_timestamp, account_key)
        SELECT s.provider,`,
  ],
  [
    `s.remote_addr, s.received_at, s.source, s.signature_status, s.signature_timestamp
`,
    `s.remote_addr, s.received_at, s.source, s.signature_status, s.signature_timestamp, s.account_key
`,
  ],
  [
    `SELECT e.stream_name AS st, count(*)::int AS n
`,
    `SELECT e.stream_name AS st, count(*)::int AS n, (array_agg(e.account_key ORDER BY e.seq))[1] AS ak
`,
  ],
  ...headEdits('c.ak'),
  [
    `occurred_at, received_at, prev_hash, hash, chain_version)
            SELECT e.event_id,`,
    `occurred_at, received_at, prev_hash, hash, chain_version, account_key)
            SELECT e.event_id,`,
  ],
  [`e.received_at, z.ph, z.hh, p_chain_version
`, `e.received_at, z.ph, z.hh, p_chain_version, hk.ak
`],
  [
    `JOIN import_staged_events e ON e.batch = p_batch AND e.seq = z.seq
`,
    `JOIN import_staged_events e ON e.batch = p_batch AND e.seq = z.seq
            JOIN unnest(head_name, head_key) AS hk(name, ak) ON hk.name = e.stream_name
`,
  ],
];

const RECEIPT_KEY_EDITS: [string, string][] = [
  [
    `INSERT INTO webhook_receipt_keys (receipt_id, provider, body_sha256, dedupe_key, received_at)
      VALUES (NEW.id, NEW.provider, NEW.body_sha256, coalesce(NEW.dedupe_key, NEW.body_sha256), NEW.received_at)`,
    `INSERT INTO webhook_receipt_keys (receipt_id, provider, body_sha256, dedupe_key, received_at, account_key)
      VALUES (NEW.id, NEW.provider, NEW.body_sha256, coalesce(NEW.dedupe_key, NEW.body_sha256), NEW.received_at, NEW.account_key)`,
  ],
];

const MONTH_EDITS: [string, string][] = [
  [`CREATE UNIQUE INDEX ON %I (stream_name, stream_version)'`, `CREATE UNIQUE INDEX ON %I (stream_name, stream_version, account_key)'`],
];

const TABLES = ['webhook_receipts', 'webhook_receipt_keys', 'events', 'streams', 'receipt_translations', 'import_staged_receipts', 'import_staged_events'];
/** Tables whose append-only triggers refuse the backfill's UPDATEs. */
const GUARDED = ['webhook_receipts', 'webhook_receipt_keys', 'events', 'receipt_translations'];

/** The provider a stream name is of (`callLeg-<provider>:<leg>`, `unrecognized-<provider>`, `erasures-ledger`). */
const PROVIDER_OF_STREAM = sql.raw(`substring(s.stream_name from '^[^-]*-([^:]*)')`);

/** The unique (stream_name, stream_version[, account_key]) index of each events month, made again with `columns`. */
const remakeMonthIndexes = (from: string, to: string) => sql`
  DO $do$
  DECLARE r record;
  BEGIN
    FOR r IN
      SELECT i.indexrelid::regclass AS idx, c.oid::regclass AS part FROM pg_inherits h
      JOIN pg_class c ON c.oid = h.inhrelid
      JOIN pg_index i ON i.indrelid = c.oid AND i.indisunique
      WHERE h.inhparent = 'events'::regclass AND pg_get_indexdef(i.indexrelid) LIKE ${sql.lit(`% (${from})`)}
    LOOP
      EXECUTE format('DROP INDEX %s', r.idx);
      EXECUTE format('CREATE UNIQUE INDEX ON %s (%s)', r.part, ${sql.lit(to)});
    END LOOP;
  END $do$`;

export async function up(db: Kysely<any>): Promise<void> {
  for (const t of TABLES) await sql`ALTER TABLE ${sql.table(t)} ADD COLUMN account_key text`.execute(db);

  for (const t of GUARDED) await sql`ALTER TABLE ${sql.table(t)} DISABLE TRIGGER USER`.execute(db);
  // Set-wise (joins, not a probe per row): each row is written once, the few without a match by a second pass.
  // Receipts: the first of their events that names an account, in position order (the live path's rule).
  await sql`
    UPDATE webhook_receipts w SET account_key = w.provider || ':' || a.account
    FROM (SELECT DISTINCT ON (e.receipt_id) e.receipt_id, e.received_at, e.metadata->>'accountId' AS account FROM events e
          WHERE e.metadata->>'accountId' <> '' ORDER BY e.receipt_id, e.global_position) a
    WHERE w.id = a.receipt_id AND w.received_at = a.received_at`.execute(db);
  await sql`UPDATE webhook_receipts SET account_key = provider || ':' WHERE account_key IS NULL`.execute(db);
  await sql`
    UPDATE webhook_receipt_keys k SET account_key = w.account_key FROM webhook_receipts w
    WHERE w.id = k.receipt_id AND w.received_at = k.received_at`.execute(db);
  await sql`UPDATE webhook_receipt_keys SET account_key = provider || ':' WHERE account_key IS NULL`.execute(db);
  await sql`UPDATE receipt_translations t SET account_key = k.account_key FROM webhook_receipt_keys k WHERE k.receipt_id = t.receipt_id`.execute(db);
  // Heads: the receipt of their first event still stored (the delivery that made the head, unless retention took it).
  await sql`
    UPDATE streams s SET account_key = f.account_key
    FROM (SELECT DISTINCT ON (e.stream_name) e.stream_name, k.account_key FROM events e JOIN webhook_receipt_keys k ON k.receipt_id = e.receipt_id
          ORDER BY e.stream_name, e.stream_version) f
    WHERE f.stream_name = s.stream_name`.execute(db);
  await sql`UPDATE streams s SET account_key = ${PROVIDER_OF_STREAM} || ':' WHERE s.account_key IS NULL`.execute(db);
  await sql`UPDATE events e SET account_key = s.account_key FROM streams s WHERE s.stream_name = e.stream_name`.execute(db);
  await sql`UPDATE events e SET account_key = k.account_key FROM webhook_receipt_keys k WHERE e.account_key IS NULL AND k.receipt_id = e.receipt_id`.execute(db);
  // Staging rows of open transactions only (none outlives its chunk): made well-formed, whatever they are.
  await sql`UPDATE import_staged_receipts SET account_key = provider || ':'`.execute(db);
  await sql`
    UPDATE import_staged_events e SET account_key = coalesce(
      (SELECT r.account_key FROM import_staged_receipts r WHERE r.batch = e.batch AND r.ord = e.ord), ':')`.execute(db);
  for (const t of GUARDED) await sql`ALTER TABLE ${sql.table(t)} ENABLE TRIGGER USER`.execute(db);

  for (const t of TABLES) await sql`ALTER TABLE ${sql.table(t)} ALTER COLUMN account_key SET NOT NULL`.execute(db);

  await sql`ALTER TABLE webhook_receipts DROP CONSTRAINT webhook_receipts_pkey, ADD CONSTRAINT webhook_receipts_pkey PRIMARY KEY (id, received_at, account_key)`.execute(db);
  await sql`ALTER TABLE events DROP CONSTRAINT events_pkey, ADD CONSTRAINT events_pkey PRIMARY KEY (global_position, received_at, account_key)`.execute(db);
  await sql`
    ALTER TABLE receipt_translations DROP CONSTRAINT receipt_translations_pkey,
    ADD CONSTRAINT receipt_translations_pkey PRIMARY KEY (receipt_id, version, account_key)`.execute(db);
  await remakeMonthIndexes('stream_name, stream_version', 'stream_name, stream_version, account_key').execute(db);

  await rewriteFunction('ledger_create_month(date)', MONTH_EDITS).execute(db);
  await rewriteFunction('ledger_receipt_key()', RECEIPT_KEY_EDITS).execute(db);
  await rewriteFunction(STAGED, STAGED_EDITS).execute(db);
  await rewriteFunction(RETRANSLATE, RETRANSLATE_EDITS).execute(db);
  // A new signature: the edited text is created beside the old one, which goes.
  await rewriteFunction(APPEND_22, APPEND_EDITS).execute(db);
  await sql`DROP FUNCTION ${sql.raw(APPEND_22)}`.execute(db);
  await sql`REVOKE ALL ON FUNCTION ${sql.raw(APPEND_23)} FROM PUBLIC`.execute(db);
  await reapplyRoles(db);
}

export async function down(db: Kysely<any>): Promise<void> {
  await rewriteFunction(APPEND_23, reversed(APPEND_EDITS)).execute(db);
  await sql`DROP FUNCTION ${sql.raw(APPEND_23)}`.execute(db);
  await sql`REVOKE ALL ON FUNCTION ${sql.raw(APPEND_22)} FROM PUBLIC`.execute(db);
  await rewriteFunction(RETRANSLATE, reversed(RETRANSLATE_EDITS)).execute(db);
  await rewriteFunction(STAGED, reversed(STAGED_EDITS)).execute(db);
  await rewriteFunction('ledger_receipt_key()', reversed(RECEIPT_KEY_EDITS)).execute(db);
  await rewriteFunction('ledger_create_month(date)', reversed(MONTH_EDITS)).execute(db);

  await remakeMonthIndexes('stream_name, stream_version, account_key', 'stream_name, stream_version').execute(db);
  await sql`ALTER TABLE receipt_translations DROP CONSTRAINT receipt_translations_pkey, ADD CONSTRAINT receipt_translations_pkey PRIMARY KEY (receipt_id, version)`.execute(db);
  await sql`ALTER TABLE events DROP CONSTRAINT events_pkey, ADD CONSTRAINT events_pkey PRIMARY KEY (global_position, received_at)`.execute(db);
  await sql`ALTER TABLE webhook_receipts DROP CONSTRAINT webhook_receipts_pkey, ADD CONSTRAINT webhook_receipts_pkey PRIMARY KEY (id, received_at)`.execute(db);
  for (const t of TABLES) await sql`ALTER TABLE ${sql.table(t)} DROP COLUMN account_key`.execute(db);
  await reapplyRoles(db);
}
