import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import { buildCallTree, type Provider } from '@lib/ledger';
import { toCallTreeDto } from './call-leg.mapper.js';
import type { CallTreeDto } from './calls.dto.js';
import { CallsRepository } from './calls.repository.js';
import { resolveLeg } from './resolve-leg.js';

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
    const leg = await resolveLeg(this.repo, callId, provider);
    const legs = await this.repo.treeLegs(leg.provider, leg.rootCallId);
    // The projection heals roots in the same transaction that writes a leg, so the leg is in its root's set.
    return toCallTreeDto(buildCallTree(legs.length ? legs : [leg]));
  }
}
