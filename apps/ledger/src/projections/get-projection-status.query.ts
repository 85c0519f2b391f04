import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import { Projector, type ProjectionStatus } from '@lib/projections';

export class GetProjectionStatusQuery extends Query<ProjectionStatus[]> {}

@QueryHandler(GetProjectionStatusQuery)
export class GetProjectionStatusHandler implements IQueryHandler<GetProjectionStatusQuery> {
  constructor(private readonly projector: Projector) {}

  execute(): Promise<ProjectionStatus[]> {
    return this.projector.status();
  }
}
