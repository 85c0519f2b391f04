import { Controller, Get, Req, StreamableFile, UseGuards, UseInterceptors } from '@nestjs/common';
import { QueryBus } from '@nestjs/cqrs';
import { Readable } from 'node:stream';
import { z } from 'zod';
import { callLegSchema, exportCallsQuerySchema, type ExportCallsQueryParams } from '../calls/calls.dto.js';
import { ApiKeyGuard, RequireScope, type AuthenticatedRequest } from '../common/api-key.guard.js';
import { ApiRoute, ValidQuery } from '../common/api-route.decorator.js';
import { AuditActionsRepository } from '../common/audit-actions.repository.js';
import { ReadsReplica, ReadYourWritesInterceptor } from '../projections/read-your-writes.interceptor.js';
import { CALL_CSV_COLUMNS } from './call-csv.js';
import { ExportCallsQuery } from './export-calls.query.js';

const CONTENT_TYPES = { csv: 'text/csv; charset=utf-8', ndjson: 'application/x-ndjson; charset=utf-8' } as const;

@Controller('v1/export')
@UseGuards(ApiKeyGuard)
@RequireScope('read')
@UseInterceptors(ReadYourWritesInterceptor)
@ReadsReplica()
export class ExportController {
  constructor(
    private readonly queryBus: QueryBus,
    private readonly actions: AuditActionsRepository,
  ) {}

  @Get('calls')
  @ApiRoute({
    tag: 'export',
    summary: 'Stream every matching call leg as CSV or NDJSON',
    description:
      'Same filters and order as GET /v1/calls, without paging: the answer is streamed in keyset batches. ' +
      `CSV columns: ${CALL_CSV_COLUMNS.join(', ')}; list fields are joined with ";". NDJSON: one CallLeg object per line.`,
    query: exportCallsQuerySchema,
    responses: [
      { contentType: 'text/csv', schema: z.string().describe('RFC 4180, CRLF line ends, header row first'), description: 'format=csv' },
      { contentType: 'application/x-ndjson', schema: callLegSchema, description: 'format=ndjson; the schema is that of each line' },
    ],
  })
  async export(@ValidQuery(exportCallsQuerySchema) q: ExportCallsQueryParams, @Req() req: AuthenticatedRequest): Promise<StreamableFile> {
    const chunks = await this.queryBus.execute(new ExportCallsQuery(q, req.actor?.masked ?? false));
    // A file the client keeps, which an erasure cannot reach: recorded (filter names only: a value may be a number).
    const filters = Object.entries(q).filter(([k, v]) => v !== undefined && k !== 'format').map(([k]) => k).sort();
    await this.actions.record(req.actor?.name ?? 'unknown', 'export.calls', { format: q.format, masked: req.actor?.masked ?? false, filters });
    return new StreamableFile(Readable.from(chunks, { objectMode: false }), {
      type: CONTENT_TYPES[q.format],
      disposition: `attachment; filename="calls.${q.format}"`,
    });
  }
}
