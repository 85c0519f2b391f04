import { PassThrough } from 'node:stream';
import { Controller, HttpCode, Logger, Post, Req, StreamableFile, UseGuards } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import { LedgerError } from '@lib/ledger';
import { z } from 'zod';
import { ApiKeyGuard, RequireScope, type AuthenticatedRequest } from '../common/api-key.guard.js';
import { ApiRoute } from '../common/api-route.decorator.js';
import { toErrorResponse } from '../common/ledger-exception.filter.js';
import { ImportWebhooksCommand, type ImportResult } from './import-webhooks.command.js';

const NDJSON_TYPES = ['application/x-ndjson', 'application/ndjson', 'application/jsonl', 'application/x-jsonlines'];

const importResultSchema = z
  .object({
    imported: z.number().int(),
    duplicates: z.number().int(),
    rejected: z.array(z.object({ line: z.number().int(), error: z.string() })),
    rejectedNotListed: z.number().int().describe('rejected lines beyond the ones listed'),
  })
  .meta({ id: 'ImportResult' });

const importProgressSchema = z
  .object({
    linesRead: z.number().int(),
    bytesRead: z.number().int(),
    bytesTotal: z.number().int().nullable().describe('the Content-Length of the upload, null when it was sent chunked'),
    linesLeft: z.number().int().nullable().describe('estimated from the bytes left and the mean line so far; null without bytesTotal'),
    imported: z.number().int(),
    duplicates: z.number().int(),
    rejected: z.number().int(),
    linesPerSec: z.number(),
    elapsedSec: z.number(),
  })
  .meta({ id: 'ImportProgress' });

/** With `Accept: application/x-ndjson`, one of these per line: progress every second, then the result or an error. */
const importStreamLineSchema = z
  .union([
    z.strictObject({ progress: importProgressSchema }),
    z.strictObject({ result: importResultSchema }),
    z.strictObject({ error: z.object({ code: z.string(), message: z.string() }) }),
  ])
  .meta({ id: 'ImportStreamLine' });

@Controller('v1/import')
@UseGuards(ApiKeyGuard)
@RequireScope('import')
export class ImportController {
  private readonly logger = new Logger('Import');

  constructor(private readonly commandBus: CommandBus) {}

  @Post()
  @HttpCode(200)
  @ApiRoute({
    tag: 'import',
    summary: 'Backfill historical webhooks from NDJSON',
    description:
      'One webhook per line: {"provider","receivedAt","contentType","body","path"?,"headers"?}. Streamed; each line is stored, ' +
      'translated and deduplicated like a live webhook, without a signature check. With `Accept: application/x-ndjson` the ' +
      'answer is streamed as NDJSON while the upload runs: a {"progress"} line every second (lines and bytes read, lines/s, ' +
      'lines left when the upload has a Content-Length), then {"result"} (or {"error"}: the status is already 200 then).',
    body: { contentTypes: ['application/x-ndjson'], schema: z.string().describe('NDJSON, one historical webhook per line') },
    responses: [
      { schema: importResultSchema },
      { contentType: 'application/x-ndjson', schema: importStreamLineSchema, description: 'Accept: application/x-ndjson; the schema is that of each line' },
    ],
    errors: [400, 403, 413, 415, 429, 503],
  })
  async import(@Req() req: AuthenticatedRequest): Promise<ImportResult | StreamableFile> {
    const type = (req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
    if (!NDJSON_TYPES.includes(type)) {
      throw new LedgerError('IMPORT.UNSUPPORTED_MEDIA_TYPE', `content-type must be application/x-ndjson, got "${type || 'none'}"`);
    }
    const body = req.body as NodeJS.ReadableStream | undefined;
    if (!body || typeof (body as { pipe?: unknown }).pipe !== 'function') {
      throw new LedgerError('IMPORT.EMPTY', 'request body is missing');
    }
    const declared = Number(req.headers['content-length']);
    const bytesTotal = Number.isSafeInteger(declared) && declared >= 0 ? declared : null;
    if (!acceptsNdjson(req.headers.accept)) return this.commandBus.execute(new ImportWebhooksCommand(body, req.actor!.name, { bytesTotal }));

    // Progress lines while the upload runs; the status (200) is sent with the first of them, so the end of the
    // upload is a line too: the result, or the error that stopped it (a database outage is a 503 elsewhere).
    const out = new PassThrough();
    const line = (value: unknown) => out.write(`${JSON.stringify(value)}\n`);
    this.commandBus.execute(new ImportWebhooksCommand(body, req.actor!.name, { bytesTotal, onProgress: (progress) => line({ progress }) })).then(
      (result) => out.end(`${JSON.stringify({ result })}\n`),
      (err: unknown) => {
        const { status, body: error } = toErrorResponse(err);
        if (status >= 500) this.logger.warn(`import stopped: ${error.error.code}: ${(err as Error).message}`);
        out.end(`${JSON.stringify(error)}\n`);
      },
    );
    return new StreamableFile(out, { type: 'application/x-ndjson; charset=utf-8' });
  }
}

const acceptsNdjson = (accept: string | string[] | undefined): boolean =>
  [accept ?? ''].flat().some((a) => a.split(',').some((t) => NDJSON_TYPES.includes(t.split(';', 1)[0]!.trim().toLowerCase())));
