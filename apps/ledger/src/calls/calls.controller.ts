import { Controller, Get, Param, UseGuards, UseInterceptors } from '@nestjs/common';
import { QueryBus } from '@nestjs/cqrs';
import type { z } from 'zod';
import { ApiKeyGuard, RequireScope } from '../common/api-key.guard.js';
import { ApiRoute, ValidQuery } from '../common/api-route.decorator.js';
import { ReadsReplica, ReadYourWritesInterceptor } from '../projections/read-your-writes.interceptor.js';
import {
  callEventsQuerySchema,
  callEventsSchema,
  callLegSchema,
  callPageSchema,
  callTreeSchema,
  getCallQuerySchema,
  listCallsQuerySchema,
  type CallLegDto,
  type CallTreeDto,
  type ListCallsQueryParams,
} from './calls.dto.js';
import { GetCallEventsQuery, type CallEvents } from './get-call-events.query.js';
import { GetCallDiscrepanciesQuery, GetCallTreeQuery } from './get-call-tree.query.js';
import { discrepanciesQuerySchema, discrepanciesSchema, type DiscrepancyDto } from './intent.dto.js';
import { GetCallQuery } from './get-call.query.js';
import { ListCallsQuery, type CallPage } from './list-calls.query.js';

const callIdParam = { callId: { description: "the provider's call id of the leg (CallSid, callId, call_sid)" } };

@Controller('v1/calls')
@UseGuards(ApiKeyGuard)
@RequireScope('read')
@UseInterceptors(ReadYourWritesInterceptor)
@ReadsReplica()
export class CallsController {
  constructor(private readonly queryBus: QueryBus) {}

  @Get()
  @ApiRoute({
    tag: 'calls',
    summary: 'List call legs, newest first',
    description:
      'Ordered by startedAt descending (legs without a start time come last), then provider and callId. Keyset paging: pass ' +
      '`nextCursor` back as `cursor` with the same filters; a cursor from other filters is a 400. Duration sources are ' +
      'exposed as `durationSource: {ring, talk}`.',
    query: listCallsQuerySchema,
    responses: [{ schema: callPageSchema }],
  })
  list(@ValidQuery(listCallsQuerySchema) q: ListCallsQueryParams): Promise<CallPage> {
    return this.queryBus.execute(new ListCallsQuery(q));
  }

  @Get(':callId')
  @ApiRoute({
    tag: 'calls',
    summary: 'One call leg',
    params: callIdParam,
    query: getCallQuerySchema,
    responses: [{ schema: callLegSchema }],
    errors: [404, 409],
  })
  get(@Param('callId') callId: string, @ValidQuery(getCallQuerySchema) q: z.output<typeof getCallQuerySchema>): Promise<CallLegDto> {
    return this.queryBus.execute(new GetCallQuery(callId, q.provider));
  }

  @Get(':callId/tree')
  @ApiRoute({
    tag: 'calls',
    summary: 'The whole call tree that holds the leg, from its root',
    params: callIdParam,
    query: getCallQuerySchema,
    responses: [{ schema: callTreeSchema }],
    errors: [404, 409],
  })
  tree(@Param('callId') callId: string, @ValidQuery(getCallQuerySchema) q: z.output<typeof getCallQuerySchema>): Promise<CallTreeDto> {
    return this.queryBus.execute(new GetCallTreeQuery(callId, q.provider));
  }

  @Get(':callId/discrepancies')
  @ApiRoute({
    tag: 'calls',
    summary: "Where the tree's outcome differs from what its apps asked (tee mode)",
    description:
      'Every discrepancy of every leg of the tree (the same as on `GET /v1/calls/{callId}/tree`): a dial target never attempted, a child ' +
      'leg no dial request explains, a ring longer than the timeout asked, a dial outcome that differs from what the action hook told the app.',
    params: callIdParam,
    query: discrepanciesQuerySchema,
    responses: [{ schema: discrepanciesSchema }],
    errors: [404, 409],
  })
  discrepancies(@Param('callId') callId: string, @ValidQuery(discrepanciesQuerySchema) q: z.output<typeof discrepanciesQuerySchema>): Promise<{ data: DiscrepancyDto[] }> {
    return this.queryBus.execute(new GetCallDiscrepanciesQuery(callId, q.provider, q.kind));
  }

  @Get(':callId/events')
  @ApiRoute({
    tag: 'calls',
    summary: "The leg's audit trail, oldest first, with the verbatim webhooks",
    description:
      'Each event with the receipt it was translated from. `receipt.body` is the stored body exactly: UTF-8 text when the ' +
      'bytes are valid UTF-8 (`bodyEncoding: "utf8"`), otherwise base64 of the bytes (`bodyEncoding: "base64"`). ' +
      '`chain.valid` recomputes the hash chain of every listed leg.',
    params: callIdParam,
    query: callEventsQuerySchema,
    responses: [{ schema: callEventsSchema }],
    errors: [404, 409],
  })
  events(@Param('callId') callId: string, @ValidQuery(callEventsQuerySchema) q: z.output<typeof callEventsQuerySchema>): Promise<CallEvents> {
    return this.queryBus.execute(new GetCallEventsQuery(callId, q.provider, q.tree ?? false));
  }
}
