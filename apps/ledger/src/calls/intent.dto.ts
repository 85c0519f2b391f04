import { z } from 'zod';
import { DISCREPANCY_KINDS, PROVIDERS } from '@lib/ledger';
import { queryParams } from '../common/api-route.decorator.js';
import { isoDateTime, position } from '../common/api-schema.js';

const target = z.object({ type: z.string().describe('phone, sip, user, teams, conference, queue'), value: z.string() });

export const discrepancySchema = z
  .object({
    kind: z.enum(DISCREPANCY_KINDS as [string, ...string[]]).describe('target-not-attempted, unexplained-child, ring-over-timeout, outcome-mismatch'),
    legId: z.string().describe('the leg whose app asked'),
    dialPosition: position.nullable().describe('position of the DialRequested concerned'),
    childLegId: z.string().nullable(),
    target: target.nullable(),
    message: z.string(),
  })
  .meta({ id: 'Discrepancy' });

export const legIntentSchema = z
  .object({
    answers: z
      .array(
        z.object({
          position,
          answeredAt: isoDateTime,
          answersReceiptId: z.string().nullable().describe('the delivery this answer answered (its receipt id; null when it could not be stored)'),
          path: z.string(),
          outcome: z.enum(['answered', 'timeout', 'unreachable', 'too-large']),
          status: z.number().int().nullable(),
          parse: z.enum(['ok', 'empty', 'unparseable']),
          instructions: z.array(z.string()).describe('verb names in order'),
        }),
      )
      .describe("the app's answers on this leg, in order"),
    dials: z.array(
      z.object({
        position,
        verb: z.string(),
        mode: z.enum(['simultaneous', 'single']),
        ringTimeoutSec: z.number().nullable(),
        defaultRingTimeoutSec: z.number(),
        timeLimitSec: z.number().nullable(),
        callerId: z.string().nullable(),
        amd: z.unknown(),
        record: z.boolean().nullable(),
        hooks: z.record(z.string(), z.string()),
        targets: z.array(target.extend({ childLegIds: z.array(z.string()).describe('the child legs this target became') })),
      }),
    ),
    discrepancies: z.array(discrepancySchema),
  })
  .nullable()
  .describe("what the leg's app asked for (tee mode), beside what happened; null when no answer of its app was recorded")
  .meta({ id: 'LegIntent' });
export type LegIntentDto = z.infer<typeof legIntentSchema>;
export type DiscrepancyDto = z.infer<typeof discrepancySchema>;

export const discrepanciesSchema = z.object({ data: z.array(discrepancySchema) }).meta({ id: 'Discrepancies' });

export const discrepanciesQuerySchema = queryParams({
  provider: z.enum(PROVIDERS).optional().describe('required when several providers use this call id'),
  kind: z.enum(DISCREPANCY_KINDS as [string, ...string[]]).optional().describe('only this kind'),
});
