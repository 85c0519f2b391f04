import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import { badRequest, emptyKpiTotals, kpisOf, type Kpis } from '@lib/ledger';
import { normalizeCallFilters } from '../calls/list-calls.query.js';
import type { TimeseriesQueryParams } from './analytics.dto.js';
import { AnalyticsRepository } from './analytics.repository.js';

export interface AnalyticsTimeseries {
  buckets: ({ start: string } & Kpis)[];
}

const STEP = { hour: 3_600_000, day: 86_400_000 } as const;
/** Two years of hours: beyond that a client wants days. */
export const MAX_BUCKETS = 17_520;

/** Bucket starts from the one holding `from` to the one holding `to` (exclusive when `to` is a boundary). */
export const bucketStarts = (interval: 'hour' | 'day', from: number, to: number, inclusiveEnd: boolean): number[] => {
  const step = STEP[interval];
  const first = Math.floor(from / step) * step;
  const out: number[] = [];
  for (let t = first; inclusiveEnd ? t <= to : t < to; t += step) {
    out.push(t);
    if (out.length > MAX_BUCKETS) throw badRequest('QUERY.INVALID_PARAMETER', `invalid query parameter "interval": more than ${MAX_BUCKETS} buckets; narrow since/until or use a longer interval`);
  }
  return out;
};

export class GetAnalyticsTimeseriesQuery extends Query<AnalyticsTimeseries> {
  constructor(readonly params: TimeseriesQueryParams) {
    super();
  }
}

/** KPIs per UTC hour or day of the start time, empty periods included (legs without a start time are left out). */
@QueryHandler(GetAnalyticsTimeseriesQuery)
export class GetAnalyticsTimeseriesHandler implements IQueryHandler<GetAnalyticsTimeseriesQuery> {
  constructor(private readonly repo: AnalyticsRepository) {}

  async execute({ params }: GetAnalyticsTimeseriesQuery): Promise<AnalyticsTimeseries> {
    const { interval, ...rest } = params;
    const filters = normalizeCallFilters(rest);
    const byPeriod = await this.repo.totalsByGroup(filters, interval);
    byPeriod.delete(null);
    const seen = [...byPeriod.keys()].map((k) => Date.parse(k!));
    const from = filters.since ? Date.parse(filters.since) : seen.length ? Math.min(...seen) : null;
    const to = filters.until ? Date.parse(filters.until) : seen.length ? Math.max(...seen) : null;
    if (from === null || to === null) return { buckets: [] };
    const starts = bucketStarts(interval, from, to, !filters.until);
    return {
      buckets: starts.map((t) => {
        const start = new Date(t).toISOString();
        return { start, ...kpisOf(byPeriod.get(start) ?? emptyKpiTotals()) };
      }),
    };
  }
}
