import { Controller, Get, UseGuards, UseInterceptors } from '@nestjs/common';
import { QueryBus } from '@nestjs/cqrs';
import { listRecordingsQuerySchema, recordingPageSchema, type ListRecordingsQueryParams } from '../calls/calls.dto.js';
import { ApiKeyGuard, RequireScope } from '../common/api-key.guard.js';
import { ApiRoute, ValidQuery } from '../common/api-route.decorator.js';
import { ReadsReplica, ReadYourWritesInterceptor } from '../projections/read-your-writes.interceptor.js';
import { ListRecordingsQuery, type RecordingPage } from './list-recordings.query.js';

@Controller('v1/recordings')
@UseGuards(ApiKeyGuard)
@RequireScope('read')
@UseInterceptors(ReadYourWritesInterceptor)
@ReadsReplica()
export class RecordingsController {
  constructor(private readonly queryBus: QueryBus) {}

  @Get()
  @ApiRoute({
    tag: 'recordings',
    summary: 'List recordings, newest first',
    description: 'Ordered by createdAt descending, then provider, callId, recordingId; keyset paging as for /v1/calls.',
    query: listRecordingsQuerySchema,
    responses: [{ schema: recordingPageSchema }],
  })
  list(@ValidQuery(listRecordingsQuerySchema) q: ListRecordingsQueryParams): Promise<RecordingPage> {
    return this.queryBus.execute(new ListRecordingsQuery(q));
  }
}
