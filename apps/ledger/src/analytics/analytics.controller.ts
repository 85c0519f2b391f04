import { Controller, Get, UseGuards, UseInterceptors } from '@nestjs/common';
import { QueryBus } from '@nestjs/cqrs';
import { ApiKeyGuard, RequireScope } from '../common/api-key.guard.js';
import { ApiRoute, ValidQuery } from '../common/api-route.decorator.js';
import { ReadsReplica, ReadYourWritesInterceptor } from '../projections/read-your-writes.interceptor.js';
import {
  summaryQuerySchema, summarySchema, timeseriesQuerySchema, timeseriesSchema, type SummaryQueryParams, type TimeseriesQueryParams,
} from './analytics.dto.js';
import { GetAnalyticsSummaryQuery, type AnalyticsSummary } from './get-analytics-summary.query.js';
import { GetAnalyticsTimeseriesQuery, type AnalyticsTimeseries } from './get-analytics-timeseries.query.js';

const SOURCES =
  'Served from hourly rollups kept by the call_legs projection (whole hours) plus the legs of the partial hours at the ' +
  'edges of since/until; from, to and final filters and from/to groupings read the legs directly. Same figures either way.';

@Controller('v1/analytics')
@UseGuards(ApiKeyGuard)
@RequireScope('read')
@UseInterceptors(ReadYourWritesInterceptor)
@ReadsReplica()
export class AnalyticsController {
  constructor(private readonly queryBus: QueryBus) {}

  @Get('summary')
  @ApiRoute({
    tag: 'analytics',
    summary: 'Telecom KPIs (ASR, NER, ACD, ...) over the matching legs, optionally grouped',
    description: `KPI definitions are in the Kpis schema (ITU-T E.411 / E.425 practice). ${SOURCES}`,
    query: summaryQuerySchema,
    responses: [{ schema: summarySchema }],
  })
  summary(@ValidQuery(summaryQuerySchema) q: SummaryQueryParams): Promise<AnalyticsSummary> {
    return this.queryBus.execute(new GetAnalyticsSummaryQuery(q));
  }

  @Get('timeseries')
  @ApiRoute({
    tag: 'analytics',
    summary: 'KPIs per UTC hour or day of the start time, empty buckets included',
    description: `Buckets run from since (or the first matching leg) to until (or the last). ${SOURCES}`,
    query: timeseriesQuerySchema,
    responses: [{ schema: timeseriesSchema }],
  })
  timeseries(@ValidQuery(timeseriesQuerySchema) q: TimeseriesQueryParams): Promise<AnalyticsTimeseries> {
    return this.queryBus.execute(new GetAnalyticsTimeseriesQuery(q));
  }
}
