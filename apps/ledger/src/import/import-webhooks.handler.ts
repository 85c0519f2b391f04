import { Transform } from 'node:stream';
import { Inject, Logger } from '@nestjs/common';
import { CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import split2 from 'split2';
import { LEDGER_CONFIG, type LedgerConfig } from '@lib/config';
import { isConnectionError } from '@lib/db';
import { BulkAppendRepository, StagedChunk, retryTransient, type BulkAppendResult, type WebhookRecord } from '@lib/event-store';
import { LedgerError } from '@lib/ledger';
import { ProviderRegistry } from '@lib/providers';
import { Projector } from '@lib/projections';
import { AuditActionsRepository } from '../common/audit-actions.repository.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { ImportWebhooksCommand, type ImportProgress, type ImportResult } from './import-webhooks.command.js';
import { importLineRecord } from './import-line.schema.js';

/**
 * Rows per transaction of the bulk path, and a cap on a chunk's COPY text (bodies may be up to
 * LEDGER_MAX_BODY_BYTES each). Large enough that a commit and a function call are paid once per thousands of
 * rows (PostgreSQL's CPU per row was the same at 1,000, 2,000 and 5,000: bench/bulk-append.probe.ts); small
 * enough that the two chunks' buffers (one being written, one being filled) stay a few megabytes each.
 */
const CHUNK_ROWS = 2000;
const CHUNK_TEXT = 16 * 1024 * 1024;
const MAX_LISTED_REJECTIONS = 1000;
/** Retries of a chunk after a connection error (waits 0.25, 0.5, 1, 2 s) before the upload fails with 503. */
const CONNECTION_RETRIES = 4;
/** How often a running upload reports where it stands (log line, and a progress line to a caller that asked). */
export const IMPORT_PROGRESS_INTERVAL_MS = 1000;

type Chunk = StagedChunk<number>;

/**
 * Streams the upload line by line into chunks of staged rows (COPY text in the chunk's buffers, written as each
 * line is parsed; two chunks alternate, so their buffers are allocated once per upload) and
 * appends each chunk in one transaction through the bulk path (`BulkAppendRepository`: COPY into staging, then
 * `ledger_append_staged`), with at most one chunk in flight while the next one is parsed: memory stays flat
 * whatever the size. Dedupe, stream versions and the hash chain are those of live ingest.
 */
@CommandHandler(ImportWebhooksCommand)
export class ImportWebhooksHandler implements ICommandHandler<ImportWebhooksCommand> {
  private readonly logger = new Logger('Import');

  constructor(
    private readonly bulk: BulkAppendRepository,
    private readonly providers: ProviderRegistry,
    private readonly metrics: MetricsService,
    @Inject(LEDGER_CONFIG) private readonly config: LedgerConfig,
    private readonly projector: Projector,
    private readonly audit: AuditActionsRepository,
  ) {}

  /** Every upload leaves an audit record naming its key, with its counts and the ids of the receipts it created. */
  async execute(command: ImportWebhooksCommand): Promise<ImportResult> {
    const receipts = { first: null as bigint | null, last: null as bigint | null };
    let result: ImportResult | undefined;
    try {
      result = await this.run(command, receipts);
      return result;
    } finally {
      await this.audit
        .record(command.actor, 'import', {
          outcome: result ? 'done' : 'failed',
          imported: result?.imported ?? null,
          duplicates: result?.duplicates ?? null,
          rejected: result ? result.rejected.length + result.rejectedNotListed : null,
          firstReceiptId: receipts.first?.toString() ?? null,
          lastReceiptId: receipts.last?.toString() ?? null,
        })
        // A database outage fails the import with 503 already; the audit write must not turn it into a 500.
        .catch(() => undefined);
    }
  }

  private async run(command: ImportWebhooksCommand, receipts: { first: bigint | null; last: bigint | null }): Promise<ImportResult> {
    const result: ImportResult = { imported: 0, duplicates: 0, rejected: [], rejectedNotListed: 0 };
    const reject = (line: number, error: string) => {
      this.metrics.imported.inc({ result: 'rejected' });
      if (result.rejected.length < MAX_LISTED_REJECTIONS) result.rejected.push({ line, error });
      else result.rejectedNotListed += 1;
    };
    const duplicate = (n: number) => {
      result.duplicates += n;
      this.metrics.imported.inc({ result: 'duplicate' }, n);
    };
    const count = (r: BulkAppendResult) => {
      result.imported += r.imported;
      this.metrics.imported.inc({ result: 'imported' }, r.imported);
      duplicate(r.duplicates);
      if (r.firstReceiptId !== null && (receipts.first === null || r.firstReceiptId < receipts.first)) receipts.first = r.firstReceiptId;
      if (r.lastReceiptId !== null && (receipts.last === null || r.lastReceiptId > receipts.last)) receipts.last = r.lastReceiptId;
    };
    // A line the database refuses (say, a date PostgreSQL cannot hold) must not fail the whole upload with a 500:
    // the chunk is split until that line is alone and rejected, and its neighbours are kept (the hostile-input
    // fuzz test found this). An unreachable database still fails the request, as a 503.
    const write = async (chunk: Chunk, rows: Chunk['rows']): Promise<void> => {
      try {
        count(await this.appendChunk(chunk, rows));
        this.projector.wake();
      } catch (err) {
        // An outage, or a lock that outlived the retries (a LedgerError SERVICE.UNAVAILABLE), fails the upload; a
        // rejected line is visible to the uploader, who can send it again.
        if (isConnectionError(err) || err instanceof LedgerError) {
          this.logger.warn(`import stopped at line ${rows[0]!.tag} or after: ${(err as Error).message}`);
          throw err;
        }
        if (rows.length === 1) return reject(rows[0]!.tag, `could not be stored: ${(err as Error).message}`);
        const mid = rows.length >> 1;
        await write(chunk, rows.slice(0, mid));
        await write(chunk, rows.slice(mid));
      }
    };

    const started = performance.now();
    let bytesRead = 0;
    let lineNo = 0;
    const bytesTotal = command.options.bytesTotal ?? null;
    const progress = (): ImportProgress => {
      const elapsedSec = (performance.now() - started) / 1000;
      return {
        linesRead: lineNo,
        bytesRead,
        bytesTotal,
        linesLeft: bytesTotal === null || lineNo === 0 ? null : Math.max(0, Math.round(((bytesTotal - bytesRead) * lineNo) / Math.max(bytesRead, 1))),
        imported: result.imported,
        duplicates: result.duplicates,
        rejected: result.rejected.length + result.rejectedNotListed,
        linesPerSec: elapsedSec > 0 ? Math.round(lineNo / elapsedSec) : 0,
        elapsedSec: Math.round(elapsedSec * 10) / 10,
      };
    };
    const report = () => {
      const p = progress();
      this.logger.log(
        `import: ${p.linesRead} lines read (${p.linesPerSec} lines/s), ${p.bytesRead}${p.bytesTotal === null ? '' : ` of ${p.bytesTotal}`} bytes` +
          `${p.linesLeft === null ? '' : `, about ${p.linesLeft} lines left`}; ${p.imported} imported, ${p.duplicates} duplicates, ${p.rejected} rejected`,
      );
      command.options.onProgress?.(p);
    };
    const ticker = setInterval(report, IMPORT_PROGRESS_INTERVAL_MS);
    ticker.unref();

    let chunk: Chunk = new StagedChunk();
    // The chunk being written; once its write has settled, its buffers are reused for the chunk after next.
    let writing: Chunk | null = null;
    let inFlight: Promise<void> = Promise.resolve();
    const counted = new Transform({
      transform(piece: Buffer, _enc, done) {
        bytesRead += piece.length;
        done(null, piece);
      },
    });
    const lines = command.body.pipe(counted).pipe(split2({ maxLength: this.config.maxBodyBytes * 2 + 4096 }));
    // An error of the upload itself (the client went away) reaches split2 through the pipe.
    command.body.on('error', (err) => counted.destroy(err));
    counted.on('error', (err) => lines.destroy(err));
    try {
      try {
        for await (const raw of lines as AsyncIterable<string>) {
          lineNo += 1;
          if (raw.trim() === '') continue;
          const record = this.toRecord(raw, lineNo, reject);
          if (!record) continue;
          let staged: boolean;
          try {
            staged = chunk.add(record, lineNo);
          } catch (err) {
            reject(lineNo, `could not be staged: ${(err as Error).message}`);
            continue;
          }
          if (!staged) {
            duplicate(1);
            continue;
          }
          if (chunk.length >= CHUNK_ROWS || chunk.bytes >= CHUNK_TEXT) {
            await inFlight;
            const full = chunk;
            inFlight = write(full, full.rows);
            // Marked handled now: it is awaited only after the next lines are read, and an unhandled rejection
            // (a database outage mid-upload) would end the process instead of answering 503.
            inFlight.catch(() => undefined);
            chunk = writing ?? new StagedChunk();
            chunk.clear();
            writing = full;
          }
        }
      } catch (err) {
        reject(lineNo + 1, `upload could not be read past this line: ${(err as Error).message}`);
      }
      await inFlight;
      if (chunk.length > 0) await write(chunk, chunk.rows);
    } finally {
      clearInterval(ticker);
    }
    report();
    return result;
  }

  /**
   * A chunk is idempotent (appending it again after a commit whose answer was lost only finds duplicates), so a
   * connection that could not be opened or was lost is retried a few times before the upload fails with 503: on a
   * busy machine, opening a connection can outlast the pool's connect timeout (seen under a load average of 20).
   */
  private async appendChunk(chunk: Chunk, rows: Chunk['rows']): Promise<BulkAppendResult> {
    for (let attempt = 0; ; attempt += 1) {
      try {
        return await retryTransient(() => this.bulk.appendChunk(chunk, rows));
      } catch (err) {
        if (!isConnectionError(err) || attempt >= CONNECTION_RETRIES) throw err;
        this.logger.warn(`import: chunk at line ${rows[0]!.tag} retried after a connection error: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
      }
    }
  }

  private toRecord(raw: string, lineNo: number, reject: (line: number, error: string) => void): WebhookRecord | null {
    const r = importLineRecord(raw, this.config.maxBodyBytes, this.providers);
    if ('error' in r) {
      reject(lineNo, r.error);
      return null;
    }
    return r.record;
  }
}
