import { Body, Controller, Get, HttpCode, Post, Req, UseGuards, UseInterceptors } from '@nestjs/common';
import { CommandBus, QueryBus } from '@nestjs/cqrs';
import { z } from 'zod';
import { badRequest } from '@lib/ledger';
import type { ProjectionStatus } from '@lib/projections';
import { ApiKeyGuard, RequireScope, type AuthenticatedRequest } from '../common/api-key.guard.js';
import { AuditActionsRepository } from '../common/audit-actions.repository.js';
import { ApiRoute, queryParams, ValidQuery } from '../common/api-route.decorator.js';
import { isoDateTime, position } from '../common/api-schema.js';
import { GetProjectionStatusQuery } from './get-projection-status.query.js';
import { RebuildProjectionsCommand } from './rebuild-projections.command.js';
import { ReadYourWritesInterceptor } from './read-your-writes.interceptor.js';

const rebuildBody = z.strictObject({ name: z.string().min(1).max(100).optional() }).optional();

const projectionStatusSchema = z
  .object({
    name: z.string(),
    version: z.number().int(),
    generation: z.number().int(),
    checkpoint: z.object({ xid: z.string(), position }),
    head: position.describe('newest position in the store'),
    lagEvents: z.number(),
    lagSeconds: z.number(),
    state: z.enum(['running', 'rebuilding', 'failing']),
    lastError: z.string().nullable(),
    failingPosition: position.nullable(),
    rebuild: z.object({ generation: z.number().int(), position }).nullable(),
    parkedEvents: z.number().int().min(0).describe('events of the current generation that could not be applied even alone, and were skipped'),
    parked: z
      .array(
        z.object({
          position,
          eventId: z.string(),
          stream: z.string(),
          type: z.string(),
          error: z.string().describe('why the read model refused it (the database error or the projection code)'),
          parkedAt: isoDateTime,
        }),
      )
      .describe('the newest parked events, at most 20; the raw webhooks stay in the store and in GET /v1/calls/{callId}/events'),
  })
  .meta({ id: 'ProjectionStatus' });
const statusQuery = queryParams({});

@Controller('v1/admin/projections')
@UseGuards(ApiKeyGuard)
@RequireScope('admin')
export class ProjectionsController {
  constructor(
    private readonly commandBus: CommandBus,
    private readonly queryBus: QueryBus,
    private readonly audit: AuditActionsRepository,
  ) {}

  @Get()
  @UseInterceptors(ReadYourWritesInterceptor)
  @ApiRoute({ tag: 'admin', summary: 'Projection checkpoints, lag and state', query: statusQuery, responses: [{ schema: z.object({ data: z.array(projectionStatusSchema) }) }] })
  async status(@ValidQuery(statusQuery) _q: unknown): Promise<{ data: ProjectionStatus[] }> {
    return { data: await this.queryBus.execute(new GetProjectionStatusQuery()) };
  }

  /** Starts a side-by-side rebuild and answers at once; progress shows in GET /v1/admin/projections. */
  @Post('rebuild')
  @HttpCode(202)
  @ApiRoute({
    tag: 'admin',
    summary: 'Rebuild one projection (or all) side by side; answers at once',
    body: { contentTypes: ['application/json'], schema: rebuildBody.unwrap(), required: false },
    responses: [{ status: 202, schema: z.object({ rebuilding: z.array(z.string()) }) }],
    errors: [400, 404],
  })
  async rebuild(@Body() body: unknown, @Req() req: AuthenticatedRequest): Promise<{ rebuilding: string[] }> {
    const parsed = rebuildBody.safeParse(body ?? undefined);
    if (!parsed.success) throw badRequest('REQUEST.INVALID_BODY', `body must be {} or {"name": "<projection>"}: ${parsed.error.issues[0]?.message}`);
    const started = await this.commandBus.execute(new RebuildProjectionsCommand(parsed.data?.name));
    await this.audit.record(req.actor!.name, 'projections.rebuild', { requested: parsed.data?.name ?? null, rebuilding: started.rebuilding });
    return started;
  }
}
