import { Controller, Get, UseGuards, UseInterceptors } from '@nestjs/common';
import { QueryBus } from '@nestjs/cqrs';
import { z } from 'zod';
import { PROVIDERS } from '@lib/ledger';
import { ApiKeyGuard, RequireScope } from '../common/api-key.guard.js';
import { ApiRoute, queryParams, ValidQuery } from '../common/api-route.decorator.js';
import { position } from '../common/api-schema.js';
import { ReadYourWritesInterceptor } from '../projections/read-your-writes.interceptor.js';
import { VerifyAuditQuery, type AuditReport } from './verify-audit.query.js';

export const verifyAuditQuerySchema = queryParams({
  since: z.iso.datetime({ offset: true }).optional().describe('streams that received an event at or after this time'),
  until: z.iso.datetime({ offset: true }).optional().describe('streams that received an event before this time'),
  callId: z.string().min(1).max(200).optional().describe("only this leg's stream"),
  provider: z.enum(PROVIDERS).optional(),
});

export const auditReportSchema = z
  .object({
    streamsChecked: z.number().int(),
    eventsChecked: z.number().int(),
    valid: z.boolean(),
    broken: z.array(
      z.object({
        callId: z.string().nullable().describe('null for a stream of unrecognized deliveries'),
        provider: z.string().nullable(),
        streamName: z.string(),
        position,
        reason: z.string(),
      }),
    ),
  })
  .meta({ id: 'AuditReport' });

@Controller('v1/audit')
@UseGuards(ApiKeyGuard)
@RequireScope('read')
@UseInterceptors(ReadYourWritesInterceptor)
export class AuditController {
  constructor(private readonly queryBus: QueryBus) {}

  @Get('verify')
  @ApiRoute({
    tag: 'audit',
    summary: 'Recompute the hash chains of the stored events',
    description:
      'Each selected stream is checked from its first event (a chain cannot be checked from the middle). Without ' +
      'parameters every stream is checked. A stream reports its first broken link only: what follows it is unverifiable.',
    query: verifyAuditQuerySchema,
    responses: [{ schema: auditReportSchema }],
  })
  verify(@ValidQuery(verifyAuditQuerySchema) q: z.output<typeof verifyAuditQuerySchema>): Promise<AuditReport> {
    const { minPosition: _m, ...scope } = q;
    return this.queryBus.execute(
      new VerifyAuditQuery({
        ...scope,
        since: scope.since ? new Date(scope.since).toISOString() : undefined,
        until: scope.until ? new Date(scope.until).toISOString() : undefined,
      }),
    );
  }
}
