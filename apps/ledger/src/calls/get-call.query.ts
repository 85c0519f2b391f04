import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import type { Provider } from '@lib/ledger';
import { toCallLegDto } from './call-leg.mapper.js';
import type { CallLegDto } from './calls.dto.js';
import { CallsRepository } from './calls.repository.js';
import { resolveLeg } from './resolve-leg.js';

export class GetCallQuery extends Query<CallLegDto> {
  constructor(
    readonly callId: string,
    readonly provider?: Provider,
  ) {
    super();
  }
}

@QueryHandler(GetCallQuery)
export class GetCallHandler implements IQueryHandler<GetCallQuery> {
  constructor(private readonly repo: CallsRepository) {}

  async execute({ callId, provider }: GetCallQuery): Promise<CallLegDto> {
    return toCallLegDto(await resolveLeg(this.repo, callId, provider));
  }
}
