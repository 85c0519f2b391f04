import { Controller, HttpCode, Post, Req, UseGuards } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import { z } from 'zod';
import { ApiKeyGuard, RequireScope, type AuthenticatedRequest } from '../common/api-key.guard.js';
import { ApiRoute } from '../common/api-route.decorator.js';
import { RunRetentionCommand } from './run-retention.command.js';
import type { RetentionRunReport } from './retention.service.js';

const runSchema = z
  .object({
    enabled: z.boolean().describe('false: LEDGER_RETENTION drops nothing, and nothing was done'),
    archived: z.array(
      z.object({
        month: z.string().describe('YYYY-MM-DD, first day of the month dropped'),
        path: z.string().describe('the archive folder: manifest.json, receipts.ndjson, events.ndjson, runs.ndjson'),
        receipts: z.number().int(),
        events: z.number().int(),
        runs: z.number().int(),
        manifestSha256: z.string(),
      }),
    ),
    kept: z.array(z.object({ month: z.string(), dropAt: z.string().nullable().describe('when the month may be dropped; null: kept') })),
  })
  .meta({ id: 'RetentionRun' });

@Controller('v1/admin/retention')
@UseGuards(ApiKeyGuard)
@RequireScope('admin')
export class RetentionController {
  constructor(private readonly commandBus: CommandBus) {}

  @Post()
  @HttpCode(200)
  @ApiRoute({
    tag: 'admin',
    summary: 'Archive and drop the months whose retention has passed, now',
    description: 'Runs what LEDGER_RETENTION_INTERVAL_SEC runs periodically; answers when the run is done.',
    responses: [{ status: 200, schema: runSchema }],
  })
  async run(@Req() req: AuthenticatedRequest): Promise<RetentionRunReport & { enabled: boolean }> {
    return this.commandBus.execute(new RunRetentionCommand(req.actor!.name));
  }
}
