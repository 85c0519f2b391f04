import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import { decodeCursor, encodeCursor } from '../common/page-cursor.js';
import { toCallLegDto } from './call-leg.mapper.js';
import type { CallLegDto, ListCallsQueryParams } from './calls.dto.js';
import { CallsRepository, type CallFilters } from './calls.repository.js';

export interface CallPage {
  data: (CallLegDto & { treeLegs: number })[];
  nextCursor: string | null;
  total?: number;
}

/** The filters as the repository and the cursor MAC see them: times in one canonical spelling. */
export const normalizeCallFilters = ({ limit: _l, cursor: _c, minPosition: _m, format: _f, withTotal: _t, ...f }: Partial<ListCallsQueryParams> & { format?: string }): CallFilters => ({
  ...f,
  since: f.since ? new Date(f.since).toISOString() : undefined,
  until: f.until ? new Date(f.until).toISOString() : undefined,
});

export class ListCallsQuery extends Query<CallPage> {
  constructor(readonly params: ListCallsQueryParams) {
    super();
  }
}

@QueryHandler(ListCallsQuery)
export class ListCallsHandler implements IQueryHandler<ListCallsQuery> {
  constructor(private readonly repo: CallsRepository) {}

  async execute({ params }: ListCallsQuery): Promise<CallPage> {
    const filters = normalizeCallFilters(params);
    const after = params.cursor ? decodeCursor('calls', { ...filters }, params.cursor, 3) : null;
    const [{ legs, keys, treeLegs }, total] = await Promise.all([
      this.repo.listLegs(filters, after, params.limit, { treeSizes: true }),
      params.withTotal ? this.repo.countLegs(filters) : Promise.resolve(undefined),
    ]);
    const more = legs.length > params.limit;
    const page: CallPage = {
      // Object.assign, not a spread into a new literal: see toStoredLeg (calls.repository.ts).
      data: legs.slice(0, params.limit).map((l, i) => Object.assign(toCallLegDto(l), { treeLegs: treeLegs[i]! })),
      nextCursor: more ? encodeCursor('calls', { ...filters }, keys[params.limit - 1]!) : null,
    };
    if (total !== undefined) page.total = total;
    return page;
  }
}
