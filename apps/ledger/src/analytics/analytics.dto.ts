import { z } from 'zod';
import { queryParams } from '../common/api-route.decorator.js';
import { callFilterShape } from '../calls/calls.dto.js';

export const GROUP_BY = ['provider', 'accountId', 'direction', 'status', 'from', 'to', 'day', 'hour'] as const;
export type GroupBy = (typeof GROUP_BY)[number];

const ratio = (what: string) => z.number().min(0).max(1).nullable().describe(`${what}; null when there are no attempts`);
const seconds = (what: string) => z.number().nullable().describe(what);

/** KPI definitions as libs/ledger/src/kpis.ts computes them (ITU-T E.411/E.425; docs/architecture.md, "Design sources"). */
export const kpisShape = {
  legs: z.number().int().describe('every matching leg, whatever its state'),
  attempts: z.number().int().describe('seizures: legs with a terminal status (completed, busy, no-answer, failed, canceled); each dialled leg is its own attempt'),
  answered: z.number().int().describe('attempts that ended completed (were answered)'),
  asr: ratio('Answer-Seizure Ratio (ITU-T E.411): answered / attempts'),
  ner: ratio('Network Effectiveness Ratio (ITU-T E.425): (answered + busy + no-answer) / attempts; canceled and failed count against it'),
  acdSec: seconds('Average Call Duration: talk seconds (answer to hang-up) averaged over answered legs only; null when none was answered'),
  totalTalkSec: z.number().describe('talk seconds summed over answered legs'),
  avgRingSec: seconds('ring seconds averaged over attempts whose ring time is known; null when none is'),
  p50TalkSec: seconds('median talk seconds of answered legs, estimated from a fixed histogram (1 s resolution under 10 s, 20 s between 3 and 10 min, interpolated within the bucket)'),
  p90TalkSec: seconds('90th percentile of talk seconds of answered legs, same histogram'),
  outcomes: z
    .object({ completed: z.number().int(), busy: z.number().int(), 'no-answer': z.number().int(), failed: z.number().int(), canceled: z.number().int() })
    .describe('attempts by terminal status'),
  machineAnswered: z.number().int().describe('answered legs that machine detection called a machine or a fax'),
  machineRate: z.number().min(0).max(1).nullable().describe('machineAnswered / answered; null when nothing was answered'),
};
export const kpisSchema = z.object(kpisShape).meta({ id: 'Kpis' });

export const summaryQuerySchema = queryParams({
  ...callFilterShape,
  groupBy: z.enum(GROUP_BY).optional().describe('one group per distinct value; day and hour are UTC periods of the start time'),
});
export type SummaryQueryParams = z.output<typeof summaryQuerySchema>;

export const summarySchema = z
  .object({
    totals: kpisSchema,
    groups: z.array(z.object({ key: z.string().nullable().describe('the group value (ISO-8601 start for day and hour); null for legs without it'), ...kpisShape })),
  })
  .meta({ id: 'AnalyticsSummary' });

export const timeseriesQuerySchema = queryParams({
  ...callFilterShape,
  interval: z.enum(['hour', 'day']).describe('bucket width (UTC)'),
});
export type TimeseriesQueryParams = z.output<typeof timeseriesQuerySchema>;

export const timeseriesSchema = z
  .object({ buckets: z.array(z.object({ start: z.string().describe('ISO-8601 start of the bucket'), ...kpisShape })) })
  .meta({ id: 'AnalyticsTimeseries' });
