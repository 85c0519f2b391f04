import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { CHAIN_VERSION } from './hash-chain.js';
import type { StagedChunk, StagedSpan } from './staged-rows.js';

export interface BulkAppendResult {
  /** Deliveries stored by this chunk. */
  imported: number;
  /** Staged deliveries the store already held (live, an earlier import, an earlier chunk). */
  duplicates: number;
  firstReceiptId: bigint | null;
  lastReceiptId: bigint | null;
  /** Global position of the last event appended, null when none was. */
  lastPosition: string | null;
}

const RECEIPT_COLUMNS =
  'batch, ord, provider, body_sha256, dedupe_key, body, content_type, path, query, headers, remote_addr, received_at, source, signature_status, signature_timestamp, account_key';
const EVENT_COLUMNS = 'batch, seq, ord, stream_name, event_id, type, data, metadata, occurred_at, received_at, content, account_key';

/**
 * A chunk normally takes well under a second; the request pool's statement timeout (15 s by default, there so
 * that a request answers 503 instead of hanging) would fail a whole upload on a busy machine, retried chunk after
 * retried chunk. An import is not waiting for a provider: it gets this much per statement of its chunk's
 * transaction, still finite, so that a stalled server fails it.
 */
const CHUNK_STATEMENT_TIMEOUT = '120s';

/**
 * The bulk path of the store (POST /v1/import): one transaction per chunk that COPYs the chunk's receipts and
 * events into the staging tables and appends them set-wise with `ledger_append_staged` (see its migration,
 * 20261202000300_bulk_import), which keeps the dedupe, stream versions and hash chain of `ledger_append`.
 * Rows must be distinct by `key` within a chunk (the caller answers copies as duplicates).
 */
export class BulkAppendRepository {
  constructor(private readonly pool: pg.Pool) {}

  /** Appends `rows` of `chunk` (all of them by default; the importer passes halves when it looks for a refused line). */
  async appendChunk<T>(chunk: StagedChunk<T>, rows: readonly StagedSpan<T>[] = chunk.rows): Promise<BulkAppendResult> {
    if (rows.length === 0) return { imported: 0, duplicates: 0, firstReceiptId: null, lastReceiptId: null, lastPosition: null };
    const client = await this.pool.connect();
    let broken: Error | undefined;
    try {
      await client.query('BEGIN');
      await client.query(`SET LOCAL statement_timeout = '${CHUNK_STATEMENT_TIMEOUT}'`);
      try {
        await pipeline(Readable.from(chunk.copyData('receipts', rows)), client.query(copyFrom(`COPY import_staged_receipts (${RECEIPT_COLUMNS}) FROM STDIN`)));
        await pipeline(Readable.from(chunk.copyData('events', rows)), client.query(copyFrom(`COPY import_staged_events (${EVENT_COLUMNS}) FROM STDIN`)));
        const res = await client.query<{ imported: number; duplicates: number; first_receipt: string | null; last_receipt: string | null; last_position: string | null }>(
          'SELECT * FROM ledger_append_staged($1::uuid, $2::smallint)',
          [chunk.batch, CHAIN_VERSION],
        );
        await client.query('COMMIT');
        const r = res.rows[0]!;
        return {
          imported: r.imported,
          duplicates: r.duplicates,
          firstReceiptId: r.first_receipt === null ? null : BigInt(r.first_receipt),
          lastReceiptId: r.last_receipt === null ? null : BigInt(r.last_receipt),
          lastPosition: r.last_position === null ? null : String(r.last_position),
        };
      } catch (err) {
        await client.query('ROLLBACK').catch((rollbackErr: Error) => {
          // A client that cannot even roll back is not given back to the pool.
          broken = rollbackErr;
        });
        throw err;
      }
    } finally {
      client.release(broken);
    }
  }
}
