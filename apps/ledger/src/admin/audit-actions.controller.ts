import { Controller, Get, UseGuards } from '@nestjs/common';
import { Query, QueryBus, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import { z } from 'zod';
import { ApiKeyGuard, RequireScope } from '../common/api-key.guard.js';
import { ApiRoute, queryParams, ValidQuery } from '../common/api-route.decorator.js';
import { AuditActionsRepository, type AuditActionRow } from '../common/audit-actions.repository.js';

const listQuery = queryParams({
  limit: z.coerce.number().int().min(1).max(1000).default(100).describe('how many, newest first, 1 to 1000'),
});

const auditActionSchema = z
  .object({
    id: z.string(),
    at: z.string().describe('ISO-8601'),
    keyName: z.string().describe('the name of the API key that acted (never the key)'),
    action: z.enum(['import', 'projections.rebuild', 'erasure', 'retention.drop']),
    details: z.record(z.string(), z.unknown()).describe('import: outcome, counts, first and last receipt id; rebuild: projection asked for and started; erasure: its id, subject kind and last two characters, reason, counts; retention.drop: month, archive path, counts, manifest sha256'),
  })
  .meta({ id: 'AuditAction' });

export class ListAuditActionsQuery extends Query<AuditActionRow[]> {
  constructor(readonly limit: number) {
    super();
  }
}

@QueryHandler(ListAuditActionsQuery)
export class ListAuditActionsHandler implements IQueryHandler<ListAuditActionsQuery> {
  constructor(private readonly repo: AuditActionsRepository) {}

  execute({ limit }: ListAuditActionsQuery): Promise<AuditActionRow[]> {
    return this.repo.recent(limit);
  }
}

@Controller('v1/admin/actions')
@UseGuards(ApiKeyGuard)
@RequireScope('admin')
export class AuditActionsController {
  constructor(private readonly queryBus: QueryBus) {}

  @Get()
  @ApiRoute({
    tag: 'admin',
    summary: 'Imports and admin actions, by API key name, newest first',
    query: listQuery,
    responses: [{ schema: z.object({ data: z.array(auditActionSchema) }) }],
  })
  async list(@ValidQuery(listQuery) q: z.output<typeof listQuery>): Promise<{ data: AuditActionRow[] }> {
    return { data: await this.queryBus.execute(new ListAuditActionsQuery(q.limit)) };
  }
}
