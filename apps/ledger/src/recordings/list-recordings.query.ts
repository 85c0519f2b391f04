import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import type { ListRecordingsQueryParams, RecordingDto } from '../calls/calls.dto.js';
import { decodeCursor, encodeCursor } from '../common/page-cursor.js';
import { RecordingsRepository, type RecordingFilters } from './recordings.repository.js';

export interface RecordingPage {
  data: RecordingDto[];
  nextCursor: string | null;
}

export class ListRecordingsQuery extends Query<RecordingPage> {
  constructor(readonly params: ListRecordingsQueryParams) {
    super();
  }
}

@QueryHandler(ListRecordingsQuery)
export class ListRecordingsHandler implements IQueryHandler<ListRecordingsQuery> {
  constructor(private readonly repo: RecordingsRepository) {}

  async execute({ params }: ListRecordingsQuery): Promise<RecordingPage> {
    const { limit, cursor, minPosition: _m, ...rest } = params;
    const filters: RecordingFilters = {
      ...rest,
      since: rest.since ? new Date(rest.since).toISOString() : undefined,
      until: rest.until ? new Date(rest.until).toISOString() : undefined,
    };
    const after = cursor ? decodeCursor('recordings', { ...filters }, cursor, 4) : null;
    const { recordings, keys } = await this.repo.list(filters, after, limit);
    return {
      data: recordings.slice(0, limit),
      nextCursor: recordings.length > limit ? encodeCursor('recordings', { ...filters }, keys[limit - 1]!) : null,
    };
  }
}
