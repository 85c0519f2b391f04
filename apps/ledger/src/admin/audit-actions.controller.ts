import { Controller, Get, UseGuards } from '@nestjs/common';
import { Query, QueryBus, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import { z } from 'zod';
import { ApiKeyGuard, RequireScope } from '../common/api-key.guard.js';
import { ApiRoute, queryParams, ValidQuery } from '../common/api-route.decorator.js';
import { AUDIT_ACTIONS, AuditActionsRepository, type AuditAction, type AuditActionRow } from '../common/audit-actions.repository.js';

const listQuery = queryParams({
  limit: z.coerce.number().int().min(1).max(1000).default(100).describe('how many, newest first, 1 to 1000'),
  action: z.enum(AUDIT_ACTIONS).optional().describe('only this action (export.calls and export.audit: the exports served, which an erasure cannot reach)'),
});

const auditActionSchema = z
  .object({
    id: z.string(),
    at: z.string().describe('ISO-8601'),
    keyName: z.string().describe('the name of the API key that acted (never the key)'),
    action: z.enum(AUDIT_ACTIONS),
    details: z
      .record(z.string(), z.unknown())
      .describe(
        'import: outcome, counts, first and last receipt id; rebuild: projection asked for and started; erasure: its id, subject kind and last two characters, reason, ' +
          'counts (archived: months rewritten and their new manifest sha256); retention.drop: month, archive path, counts, manifest sha256; ' +
          'export.calls: format, masked, the names of the filters used (never their values); export.audit: nothing more',
      ),
  })
  .meta({ id: 'AuditAction' });

export class ListAuditActionsQuery extends Query<AuditActionRow[]> {
  constructor(
    readonly limit: number,
    readonly action?: AuditAction,
  ) {
    super();
  }
}

@QueryHandler(ListAuditActionsQuery)
export class ListAuditActionsHandler implements IQueryHandler<ListAuditActionsQuery> {
  constructor(private readonly repo: AuditActionsRepository) {}

  execute({ limit, action }: ListAuditActionsQuery): Promise<AuditActionRow[]> {
    return this.repo.recent(limit, action);
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
    summary: 'Imports, admin actions and exports served, by API key name, newest first',
    query: listQuery,
    responses: [{ schema: z.object({ data: z.array(auditActionSchema) }) }],
  })
  async list(@ValidQuery(listQuery) q: z.output<typeof listQuery>): Promise<{ data: AuditActionRow[] }> {
    return { data: await this.queryBus.execute(new ListAuditActionsQuery(q.limit, q.action)) };
  }
}
