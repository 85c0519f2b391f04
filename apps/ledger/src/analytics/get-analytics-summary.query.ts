import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import { addKpiTotals, emptyKpiTotals, kpisOf, type Kpis } from '@lib/ledger';
import { normalizeCallFilters } from '../calls/list-calls.query.js';
import type { SummaryQueryParams } from './analytics.dto.js';
import { AnalyticsRepository } from './analytics.repository.js';

export interface AnalyticsSummary {
  totals: Kpis;
  groups: ({ key: string | null } & Kpis)[];
}

export class GetAnalyticsSummaryQuery extends Query<AnalyticsSummary> {
  constructor(readonly params: SummaryQueryParams) {
    super();
  }
}

@QueryHandler(GetAnalyticsSummaryQuery)
export class GetAnalyticsSummaryHandler implements IQueryHandler<GetAnalyticsSummaryQuery> {
  constructor(private readonly repo: AnalyticsRepository) {}

  async execute({ params }: GetAnalyticsSummaryQuery): Promise<AnalyticsSummary> {
    const { groupBy, ...rest } = params;
    const byGroup = await this.repo.totalsByGroup(normalizeCallFilters(rest), groupBy ?? null);
    const total = [...byGroup.values()].reduce((acc, t) => addKpiTotals(acc, t), emptyKpiTotals());
    const groups = groupBy
      ? [...byGroup.entries()]
          .sort(([a], [b]) => (a === null ? 1 : b === null ? -1 : a < b ? -1 : a > b ? 1 : 0))
          .map(([key, t]) => ({ key, ...kpisOf(t) }))
      : [];
    return { totals: kpisOf(total), groups };
  }
}
