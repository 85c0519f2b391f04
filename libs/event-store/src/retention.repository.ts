import { sql } from 'kysely';
import type { Database } from '@lib/db';
import type { MonthScope } from '@lib/ledger';
import { toChainLink, type ChainRow } from './event-store.repository.js';
import type { ArchivedRun, StoredChainLink } from './hash-chain.js';

/** A receipt of an archived month, every column as stored (the body as base64 in the archive). */
export interface ArchivedReceiptRow {
  id: string;
  provider: string;
  body_sha256: Buffer;
  dedupe_key: Buffer | null;
  body: Buffer;
  content_type: string | null;
  path: string;
  query: string;
  headers: Record<string, string>;
  remote_addr: string | null;
  received_at: Date;
  source: string;
  signature_status: string;
  signature_timestamp: Date | null;
  recorded_at: Date;
  /** Set when an erasure dropped the body (its sha256 stays). */
  erased_at: Date | null;
}

/** The suffix of a month's partitions (as ledger_create_month names them): 2025-01-01 → p2025m01. */
export const monthSuffix = (month: string): string => `p${month.slice(0, 4)}m${month.slice(5, 7)}`;

/**
 * SQL of retention (migration 20261203000210_retention): which months exist and what they hold, the detach of a
 * month (its partitions leave the store in one transaction with its archived runs recorded), the reads of the
 * detached tables that the archive is written from, and the drop. The store's tables are only ever read here and
 * changed by the SECURITY DEFINER functions.
 */
export class RetentionRepository {
  constructor(private readonly db: Database) {}

  /** Months with live partitions, oldest first, YYYY-MM-DD. */
  async liveMonths(): Promise<string[]> {
    const r = await sql<{ month: string }>`SELECT to_char(month, 'YYYY-MM-DD') AS month FROM ledger_partitions ORDER BY month`.execute(this.db);
    return r.rows.map((x) => x.month);
  }

  /** Months detached and not dropped yet (a run that stopped half way): their archive is written again. */
  async detachedMonths(): Promise<string[]> {
    const r = await sql<{ month: string }>`
      SELECT to_char(l.month, 'YYYY-MM-DD') AS month FROM ledger_retention_log l
      WHERE l.state = 'detached' AND l.id = (SELECT max(x.id) FROM ledger_retention_log x WHERE x.month = l.month)
      ORDER BY l.month`.execute(this.db);
    return r.rows.map((x) => x.month);
  }

  /** The (provider, account) pairs of a live month's events (one partition read). */
  async monthScopes(month: string): Promise<MonthScope[]> {
    const r = await sql<{ provider: string; account_id: string | null }>`
      SELECT DISTINCT metadata->>'provider' AS provider, metadata->>'accountId' AS account_id FROM events
      WHERE received_at >= ${month}::timestamp AT TIME ZONE 'UTC' AND received_at < (${month}::date + interval '1 month')::timestamp AT TIME ZONE 'UTC'
      ORDER BY 1, 2`.execute(this.db);
    return r.rows.map((x) => ({ provider: x.provider ?? '', accountId: x.account_id }));
  }

  async detach(month: string): Promise<{ receipts: number; events: number }> {
    const r = await sql<{ receipts: string; events: string }>`SELECT receipts::text, events::text FROM ledger_detach_month(${month}::date)`.execute(this.db);
    return { receipts: Number(r.rows[0]!.receipts), events: Number(r.rows[0]!.events) };
  }

  async drop(month: string, manifestSha256: Buffer, archivePath: string): Promise<void> {
    await sql`SELECT ledger_drop_month(${month}::date, ${manifestSha256}, ${archivePath})`.execute(this.db);
  }

  /** A page of a detached month's events with their receipts' hashed metadata, in (stream, version) order. */
  async detachedLinks(month: string, after: { stream: string; version: number } | null, limit: number): Promise<StoredChainLink[]> {
    const s = monthSuffix(month);
    const where = after ? sql`WHERE (e.stream_name, e.stream_version) > (${after.stream}, ${after.version})` : sql``;
    const r = await sql<ChainRow>`
      SELECT e.global_position, e.event_id, e.stream_name, e.stream_version, e.type, e.schema_version, e.data, e.metadata, e.receipt_id,
        e.received_at, e.occurred_at, e.prev_hash, e.hash, e.chain_version, e.transaction_id, r.provider, r.content_type, r.path, r.query,
        r.headers, r.remote_addr, r.source, r.signature_status, r.signature_timestamp,
        encode(r.body_sha256, 'hex') AS body_sha256, CASE WHEN r.erased_at IS NULL THEN encode(sha256(r.body), 'hex') END AS actual_body_sha256
      FROM ${sql.table(`events_${s}_archiving`)} e JOIN ${sql.table(`webhook_receipts_${s}_archiving`)} r ON r.id = e.receipt_id
      ${where}
      ORDER BY e.stream_name, e.stream_version LIMIT ${limit}`.execute(this.db);
    return r.rows.map(toChainLink);
  }

  /** A page of a detached month's receipts in id order. */
  async detachedReceipts(month: string, afterId: string, limit: number): Promise<ArchivedReceiptRow[]> {
    const s = monthSuffix(month);
    const r = await sql<ArchivedReceiptRow>`
      SELECT id::text AS id, provider, body_sha256, dedupe_key, body, content_type, path, query, headers, remote_addr, received_at, source,
        signature_status, signature_timestamp, recorded_at, erased_at
      FROM ${sql.table(`webhook_receipts_${s}_archiving`)} WHERE id > ${afterId}::bigint ORDER BY id LIMIT ${limit}`.execute(this.db);
    return r.rows;
  }

  /** The archived runs of the given streams, by stream, in version order. */
  async archivedRuns(streamNames: readonly string[]): Promise<Map<string, ArchivedRun[]>> {
    const out = new Map<string, ArchivedRun[]>();
    if (streamNames.length === 0) return out;
    const r = await sql<{ stream_name: string; first_version: number; prev_hash: Buffer | null; last_version: number; last_hash: Buffer; month: string }>`
      SELECT stream_name, first_version, prev_hash, last_version, last_hash, to_char(month, 'YYYY-MM-DD') AS month FROM ledger_archived_runs
      WHERE stream_name = ANY (${[...streamNames]}::text[]) ORDER BY stream_name, first_version`.execute(this.db);
    for (const x of r.rows) {
      const run: ArchivedRun = { firstVersion: x.first_version, prevHash: x.prev_hash, lastVersion: x.last_version, lastHash: x.last_hash, month: x.month };
      (out.get(x.stream_name) ?? out.set(x.stream_name, []).get(x.stream_name)!).push(run);
    }
    return out;
  }

  /** What the month's latest detach recorded: the archive must hold as many receipts, events and runs. */
  async detachedCounts(month: string): Promise<{ receipts: number; events: number; runs: number }> {
    const r = await sql<{ receipts: string; events: string; runs: string }>`
      SELECT receipts::text, events::text, runs::text FROM ledger_retention_log WHERE month = ${month}::date AND state = 'detached'
      ORDER BY id DESC LIMIT 1`.execute(this.db);
    const x = r.rows[0]!;
    return { receipts: Number(x.receipts), events: Number(x.events), runs: Number(x.runs) };
  }

  /**
   * Runs `fn` while holding the erasures' lock (the advisory lock ErasureRepository takes per transaction), on a
   * session of its own: no erasure runs while a month is detached, archived and dropped, and none of those starts
   * while an erasure runs, so an erasure finds each row either in the store or in a written archive.
   */
  async withErasuresHeld<T>(fn: () => Promise<T>): Promise<T> {
    return this.db.connection().execute(async (conn) => {
      await sql`SELECT pg_advisory_lock(hashtext('ledger_erase'))`.execute(conn);
      try {
        return await fn();
      } finally {
        await sql`SELECT pg_advisory_unlock(hashtext('ledger_erase'))`.execute(conn);
      }
    });
  }

  /** Each month retention archived and dropped (its latest archive), with the folder it was written to. */
  async archivedMonths(): Promise<{ month: string; path: string }[]> {
    const r = await sql<{ month: string; path: string }>`
      SELECT to_char(l.month, 'YYYY-MM-DD') AS month, l.archive_path AS path FROM ledger_retention_log l
      WHERE l.state = 'dropped' AND l.archive_path IS NOT NULL
        AND l.id = (SELECT max(x.id) FROM ledger_retention_log x WHERE x.month = l.month AND x.state = 'dropped')
      ORDER BY l.month`.execute(this.db);
    return r.rows;
  }

  /**
   * The erasure records (`PersonalDataErased`) of the given streams still in the live store: what an archive lists
   * for rows erased before their month was archived, whose record was appended in a later month.
   */
  async erasureMarkers(streamNames: readonly string[]): Promise<{ erasureId: string; at: string; positions: string[] }[]> {
    if (streamNames.length === 0) return [];
    const r = await sql<{ data: { erasureId?: string; positions?: unknown[] }; at: string }>`
      SELECT data, to_char(received_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS at FROM events
      WHERE stream_name = ANY (${[...streamNames]}::text[]) AND type = 'PersonalDataErased' ORDER BY global_position`.execute(this.db);
    return r.rows.map((x) => ({ erasureId: String(x.data.erasureId ?? ''), at: x.at, positions: (x.data.positions ?? []).map(String) }));
  }
}
