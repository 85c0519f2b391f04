import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import { buildCallTree, type Provider } from '@lib/ledger';
import { toCallTreeDto } from './call-leg.mapper.js';
import type { CallTreeDto } from './calls.dto.js';
import { CallsRepository } from './calls.repository.js';
import { pickLeg } from './resolve-leg.js';

export class GetCallTreeQuery extends Query<CallTreeDto> {
  constructor(
    readonly callId: string,
    readonly provider?: Provider,
  ) {
    super();
  }
}

@QueryHandler(GetCallTreeQuery)
export class GetCallTreeHandler implements IQueryHandler<GetCallTreeQuery> {
  constructor(private readonly repo: CallsRepository) {}

  async execute({ callId, provider }: GetCallTreeQuery): Promise<CallTreeDto> {
    const rows = await this.repo.treesOf(callId, provider);
    const leg = pickLeg(callId, provider, rows.filter((r) => r.isTarget).map((r) => r.leg));
    return toCallTreeDto(buildCallTree(rows.filter((r) => r.leg.provider === leg.provider).map((r) => r.leg)));
  }
}
