import { Inject } from '@nestjs/common';
import { CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import split2 from 'split2';
import { LEDGER_CONFIG, type LedgerConfig } from '@lib/config';
import { isConnectionError } from '@lib/db';
import { EventStoreRepository, retryTransient, type WebhookRecord } from '@lib/event-store';
import { LedgerError } from '@lib/ledger';
import { ProviderRegistry } from '@lib/providers';
import { Projector } from '@lib/projections';
import { AuditActionsRepository } from '../common/audit-actions.repository.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { buildWebhookRecord, pickHeaders } from '../webhooks/webhook-record.factory.js';
import { ImportWebhooksCommand, type ImportResult } from './import-webhooks.command.js';
import { importLineSchema } from './import-line.schema.js';

const BATCH = 1000;

interface Line {
  record: WebhookRecord;
  lineNo: number;
}
const MAX_LISTED_REJECTIONS = 1000;

/**
 * Streams the upload line by line and writes in batches through the same append path as live webhooks,
 * with at most one batch in flight while the next one is parsed: memory stays flat whatever the size.
 */
@CommandHandler(ImportWebhooksCommand)
export class ImportWebhooksHandler implements ICommandHandler<ImportWebhooksCommand> {
  constructor(
    private readonly store: EventStoreRepository,
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
      result = await this.run(command.body, receipts);
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

  private async run(body: NodeJS.ReadableStream, receipts: { first: bigint | null; last: bigint | null }): Promise<ImportResult> {
    const result: ImportResult = { imported: 0, duplicates: 0, rejected: [], rejectedNotListed: 0 };
    const reject = (line: number, error: string) => {
      this.metrics.imported.inc({ result: 'rejected' });
      if (result.rejected.length < MAX_LISTED_REJECTIONS) result.rejected.push({ line, error });
      else result.rejectedNotListed += 1;
    };
    let batch: Line[] = [];
    let inFlight: Promise<void> = Promise.resolve();
    const count = (outcomes: { duplicate: boolean; receiptId: string }[]) => {
      for (const o of outcomes) {
        if (o.duplicate) {
          result.duplicates += 1;
          continue;
        }
        result.imported += 1;
        const id = BigInt(o.receiptId);
        if (receipts.first === null || id < receipts.first) receipts.first = id;
        if (receipts.last === null || id > receipts.last) receipts.last = id;
      }
      this.metrics.imported.inc({ result: 'imported' }, outcomes.filter((o) => !o.duplicate).length);
      this.metrics.imported.inc({ result: 'duplicate' }, outcomes.filter((o) => o.duplicate).length);
    };
    // A line the database refuses (say, a NUL byte in `path`) must not fail the whole upload with a 500: the
    // batch is split until that line is alone and rejected, and its neighbours are kept (the hostile-input fuzz
    // test found this). An unreachable database still fails the request, as a 503.
    const write = async (lines: Line[]): Promise<void> => {
      try {
        count(await retryTransient(() => this.store.appendBatch(lines.map((l) => l.record))));
        this.projector.wake();
      } catch (err) {
        // An outage, or a lock that outlived the retries (a LedgerError SERVICE.UNAVAILABLE), fails the upload; a rejected line
        // is visible to the uploader, who can send it again.
        if (isConnectionError(err) || err instanceof LedgerError) throw err;
        if (lines.length === 1) return reject(lines[0]!.lineNo, `could not be stored: ${(err as Error).message}`);
        const mid = lines.length >> 1;
        await write(lines.slice(0, mid));
        await write(lines.slice(mid));
      }
    };

    const lines = body.pipe(split2({ maxLength: this.config.maxBodyBytes * 2 + 4096 }));
    let lineNo = 0;
    try {
      for await (const raw of lines as AsyncIterable<string>) {
        lineNo += 1;
        if (raw.trim() === '') continue;
        const record = this.toRecord(raw, lineNo, reject);
        if (!record) continue;
        batch.push({ record, lineNo });
        if (batch.length >= BATCH) {
          await inFlight;
          inFlight = write(batch);
          // Marked handled now: it is awaited only after the next lines are read, and an unhandled rejection
          // (a database outage mid-upload) would end the process instead of answering 503.
          inFlight.catch(() => undefined);
          batch = [];
        }
      }
    } catch (err) {
      reject(lineNo + 1, `upload could not be read past this line: ${(err as Error).message}`);
    }
    await inFlight;
    if (batch.length > 0) await write(batch);
    return result;
  }

  private toRecord(raw: string, lineNo: number, reject: (line: number, error: string) => void): WebhookRecord | null {
    let json: unknown;
    try {
      json = JSON.parse(raw);
    } catch (err) {
      reject(lineNo, `not valid JSON: ${(err as Error).message}`);
      return null;
    }
    const parsed = importLineSchema.safeParse(json);
    if (!parsed.success) {
      reject(lineNo, parsed.error.issues.map((i) => `${i.path.join('.') || 'line'}: ${i.message}`).join('; '));
      return null;
    }
    const line = parsed.data;
    const rawBody = Buffer.from(line.body, 'utf8');
    if (rawBody.length > this.config.maxBodyBytes) {
      reject(lineNo, `body exceeds ${this.config.maxBodyBytes} bytes`);
      return null;
    }
    const headers = pickHeaders(Object.fromEntries(Object.entries(line.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v])));
    return buildWebhookRecord(
      {
        provider: line.provider,
        rawBody,
        contentType: line.contentType ?? headers['content-type'] ?? null,
        path: line.path,
        query: line.query ?? '',
        headers,
        remoteAddr: null,
        receivedAt: new Date(line.receivedAt),
        signature: { status: 'not-checked', timestamp: null },
        source: 'import',
      },
      this.providers,
    );
  }
}
