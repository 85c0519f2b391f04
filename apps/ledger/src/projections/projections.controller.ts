import { Body, Controller, Get, HttpCode, Post, UseGuards, UseInterceptors } from '@nestjs/common';
import { CommandBus, QueryBus } from '@nestjs/cqrs';
import { z } from 'zod';
import { badRequest } from '@lib/ledger';
import type { ProjectionStatus } from '@lib/projections';
import { ApiKeyGuard } from '../common/api-key.guard.js';
import { GetProjectionStatusQuery } from './get-projection-status.query.js';
import { RebuildProjectionsCommand } from './rebuild-projections.command.js';
import { ReadYourWritesInterceptor } from './read-your-writes.interceptor.js';

const rebuildBody = z.strictObject({ name: z.string().min(1).max(100).optional() }).optional();

@Controller('v1/admin/projections')
@UseGuards(ApiKeyGuard)
export class ProjectionsController {
  constructor(
    private readonly commandBus: CommandBus,
    private readonly queryBus: QueryBus,
  ) {}

  @Get()
  @UseInterceptors(ReadYourWritesInterceptor)
  async status(): Promise<{ data: ProjectionStatus[] }> {
    return { data: await this.queryBus.execute(new GetProjectionStatusQuery()) };
  }

  /** Starts a side-by-side rebuild and answers at once; progress shows in GET /v1/admin/projections. */
  @Post('rebuild')
  @HttpCode(202)
  async rebuild(@Body() body: unknown): Promise<{ rebuilding: string[] }> {
    const parsed = rebuildBody.safeParse(body ?? undefined);
    if (!parsed.success) throw badRequest('REQUEST.INVALID_BODY', `body must be {} or {"name": "<projection>"}: ${parsed.error.issues[0]?.message}`);
    return this.commandBus.execute(new RebuildProjectionsCommand(parsed.data?.name));
  }
}
