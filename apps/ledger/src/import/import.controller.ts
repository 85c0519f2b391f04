import { Controller, HttpCode, Post, Req, UseGuards } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import { LedgerError } from '@lib/ledger';
import { z } from 'zod';
import { ApiKeyGuard, RequireScope, type AuthenticatedRequest } from '../common/api-key.guard.js';
import { ApiRoute } from '../common/api-route.decorator.js';
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

@Controller('v1/import')
@UseGuards(ApiKeyGuard)
@RequireScope('import')
export class ImportController {
  constructor(private readonly commandBus: CommandBus) {}

  @Post()
  @HttpCode(200)
  @ApiRoute({
    tag: 'import',
    summary: 'Backfill historical webhooks from NDJSON',
    description:
      'One webhook per line: {"provider","receivedAt","contentType","body","path"?,"headers"?}. Streamed; each line is stored, ' +
      'translated and deduplicated like a live webhook, without a signature check.',
    body: { contentTypes: ['application/x-ndjson'], schema: z.string().describe('NDJSON, one historical webhook per line') },
    responses: [{ schema: importResultSchema }],
    errors: [400, 403, 413, 415, 429, 503],
  })
  async import(@Req() req: AuthenticatedRequest): Promise<ImportResult> {
    const type = (req.headers['content-type'] ?? '').split(';', 1)[0]!.trim().toLowerCase();
    if (!NDJSON_TYPES.includes(type)) {
      throw new LedgerError('IMPORT.UNSUPPORTED_MEDIA_TYPE', `content-type must be application/x-ndjson, got "${type || 'none'}"`);
    }
    const body = req.body as NodeJS.ReadableStream | undefined;
    if (!body || typeof (body as { pipe?: unknown }).pipe !== 'function') {
      throw new LedgerError('IMPORT.EMPTY', 'request body is missing');
    }
    return this.commandBus.execute(new ImportWebhooksCommand(body, req.actor!.name));
  }
}
