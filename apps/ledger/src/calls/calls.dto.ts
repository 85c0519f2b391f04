import { legIntentSchema, type LegIntentDto } from './intent.dto.js';
import { z } from 'zod';
import { DIRECTIONS, PROVIDERS, VERIFICATIONS, type LegStatus, type RecordingScope } from '@lib/ledger';
import { isoDateTime, position } from '../common/api-schema.js';
import { queryParams } from '../common/api-route.decorator.js';

export const LEG_STATUSES = ['initiated', 'ringing', 'in-progress', 'completed', 'busy', 'no-answer', 'failed', 'canceled'] as const satisfies readonly LegStatus[];
export const RECORDING_SCOPES = ['call', 'dial', 'utterance', 'conference'] as const satisfies readonly RecordingScope[];

const provider = z.enum(PROVIDERS);
const nullableTime = isoDateTime.nullable();

export const recordingSchema = z
  .object({
    recordingId: z.string(),
    callId: z.string().describe('the leg the recording belongs to'),
    rootCallId: z.string(),
    provider,
    url: z.string(),
    durationSec: z.number().nullable(),
    scope: z.enum(RECORDING_SCOPES),
    createdAt: isoDateTime,
  })
  .meta({ id: 'Recording' });
export type RecordingDto = z.infer<typeof recordingSchema>;

export const verificationSchema = z.enum(VERIFICATIONS);

export const durationSourceSchema = z.enum(['provider', 'derived']).nullable();
export const timeSourceSchema = z.enum(['provider', 'signature', 'received', 'derived']).nullable();

export const callLegSchema = z
  .object({
    provider,
    accountId: z.string().nullable(),
    callId: z.string(),
    parentCallId: z.string().nullable(),
    rootCallId: z.string().describe('topmost known ancestor (itself for a root); healed when a parent arrives late'),
    depth: z.number().int().min(0),
    direction: z.enum(DIRECTIONS).nullable(),
    from: z.string().nullable(),
    to: z.string().nullable(),
    status: z.enum(LEG_STATUSES),
    startedAt: nullableTime,
    answeredAt: nullableTime,
    endedAt: nullableTime,
    ringDurationSec: z.number().nullable(),
    talkDurationSec: z.number().nullable(),
    durationSource: z
      .object({ ring: durationSourceSchema, talk: durationSourceSchema })
      .describe('where each duration came from: "provider" (reported by the provider, wins) or "derived" (from event times); null when there is no such duration'),
    answeredBy: z.enum(['human', 'machine', 'fax']).nullable(),
    endReason: z.string().nullable(),
    sipStatus: z.number().int().nullable(),
    recordings: z.array(recordingSchema),
    conferenceIds: z.array(z.string()),
    final: z.boolean().describe('the terminal event (and, for an answered leg, the provider-reported duration) has arrived'),
    linkConflict: z.boolean().describe('providers asserted conflicting parents for this leg; the first is kept'),
    verification: verificationSchema.describe(
      'the weakest provenance among the events that shaped the leg: verified (every one signed), imported (one at least came from POST /v1/import), unverified (one at least was accepted unsigned)',
    ),
    eventCount: z.number().int(),
    lastPosition: position,
    invalidFields: z
      .array(
        z.object({
          position: position.nullable().describe('the event that carried the value; null for a duration derived from event times'),
          type: z.string().nullable().describe('that event\'s type'),
          field: z.string(),
          value: z.string().describe('the value as text, at most 64 characters'),
          reason: z.string(),
        }),
      )
      .describe('numbers of this leg\'s events that were out of bounds and so not projected (the raw bodies keep them); oldest first, at most 50'),
    parkedEvents: z.number().int().min(0).describe('events of this leg\'s stream that the projection could not apply and skipped (see GET /v1/admin/projections)'),
    answeredByDetail: z
      .string()
      .nullable()
      .describe("the provider's own machine-detection value (Twilio `machine_end_beep`, FreeClimb `answering machine`, jambonz `amd_tone_detected`...)"),
    hangupBy: z.string().nullable().describe('which side hung up, as the provider reports it (jambonz `caller`/`jambonz`; FreeClimb `far-end`/`application`/`platform`); null when the provider does not say'),
    endReasonDetail: z.string().nullable().describe("why the leg ended, in the provider's words (Twilio `ErrorCode: ErrorMessage`)"),
    timeSource: z
      .object({ started: timeSourceSchema, answered: timeSourceSchema, ended: timeSourceSchema })
      .describe(
        'the clock each time was read from: "provider" (a time in the payload: Twilio/Restcomm Timestamp, Restcomm CallTimestamp, jambonz conference time), "signature" (the signed send time), "received" (arrival at the ledger or the import line\'s receivedAt), "derived" (end minus the provider\'s duration, when only a final callback arrived)',
      ),
    pddSec: z.number().nullable().describe('post-dial delay: start to first ringing, when the provider reports ringing (ringDurationSec includes it)'),
  })
  .meta({ id: 'CallLeg', description: 'One call leg as projected from its events.' });
export type CallLegDto = z.infer<typeof callLegSchema>;

export type CallTreeDto = CallLegDto & { intent: LegIntentDto; children: CallTreeDto[] };
export const callTreeSchema: z.ZodType<CallTreeDto> = callLegSchema
  .extend({
    intent: legIntentSchema,
    get children() {
      return z.array(callTreeSchema).describe('child legs, by start time (unknown start last), then callId');
    },
  })
  .meta({ id: 'CallTree', description: 'A call leg with its children, recursively.' });

export const callPageSchema = z
  .object({
    data: z.array(
      callLegSchema
        .extend({ treeLegs: z.number().int().min(1).describe('legs in the whole tree that holds this leg (its root and every descendant)') })
        .meta({ id: 'CallListItem', description: 'A call leg as the list shows it.' }),
    ),
    nextCursor: z.string().nullable().describe('pass as ?cursor= for the next page; null on the last page'),
    total: z.number().int().min(0).optional().describe('with ?withTotal=true: the exact number of legs the filters select (every page, not just this one)'),
  })
  .meta({ id: 'CallPage' });

const flag = (name: string) =>
  z
    .enum(['true', 'false'])
    .transform((v) => v === 'true')
    .optional()
    .describe(name);
/** Fewer characters than a trigram cannot use the trigram index, and would match nearly every leg anyway. */
export const MIN_NUMBER_SUBSTRING = 3;
/** Characters as PostgreSQL counts them (code points): `📞0` is 2, though 3 UTF-16 units. */
const chars = (v: string) => [...v].length;
const numberPattern = z
  .string()
  .min(1)
  .max(64)
  .refine((v) => !v.slice(1, -1).includes('*') && v !== '**', 'a * is allowed only at the start and/or the end')
  .refine(
    // A lone * (any known number) predates the substring search and stays.
    (v) => v === '*' || !v.startsWith('*') || chars(v.replace(/^\*|\*$/g, '')) >= MIN_NUMBER_SUBSTRING,
    `a pattern that starts with * needs at least ${MIN_NUMBER_SUBSTRING} characters besides the stars`,
  );

/** Filters shared by /v1/calls and /v1/export/calls. */
export const callFilterShape = {
  provider: provider.optional(),
  accountId: z.string().min(1).max(200).optional(),
  status: z.enum(LEG_STATUSES).optional(),
  direction: z.enum(DIRECTIONS).optional(),
  from: numberPattern.optional().describe('exact caller, a prefix ending in * (+1312*), a suffix starting with * (*0100) or a substring between stars (*5550*); other characters, % and _ included, are literal'),
  to: numberPattern.optional().describe('exact callee, or a prefix, suffix or substring with * as for from'),
  numberContains: z
    .string()
    .max(64)
    .refine((v) => chars(v) >= MIN_NUMBER_SUBSTRING, `at least ${MIN_NUMBER_SUBSTRING} characters`)
    .optional()
    .describe(`legs whose caller or callee contains this text, literally (no wildcards; at least ${MIN_NUMBER_SUBSTRING} characters)`),
  since: z.iso.datetime({ offset: true }).optional().describe('startedAt >= since (ISO-8601); legs without a start time are left out'),
  until: z.iso.datetime({ offset: true }).optional().describe('startedAt < until (ISO-8601); legs without a start time are left out'),
  rootOnly: flag('true: only legs with no parent (parentCallId is null)'),
  final: flag('true: only final legs; false: only legs still expecting events'),
  verification: verificationSchema.optional().describe('only legs of this verification state (verified, imported, unverified)'),
  // The analytics figures as list filters, so that every figure drills through to exactly the legs it counts.
  attempt: flag('true: only attempts as the analytics count them (a terminal status: completed, busy, no-answer, failed, canceled); false: only legs still initiated, ringing or in progress'),
  answeredBy: z
    .string()
    .regex(/^(human|machine|fax)(,(human|machine|fax))*$/, 'a comma-separated list of human, machine, fax')
    .optional()
    .describe('only legs that machine detection classed as one of these (comma-separated: human, machine, fax); `status=completed&answeredBy=machine,fax` is the analytics machineAnswered'),
};

export const listCallsQuerySchema = queryParams({
  ...callFilterShape,
  limit: z.coerce.number().int().min(1).max(1000).default(50).describe('page size, 1 to 1000'),
  cursor: z.string().min(1).max(2000).optional().describe('nextCursor of the previous page, with the same filters'),
  withTotal: flag('true: also count every leg the filters select (`total`); costs a count over the filtered legs'),
});
export type ListCallsQueryParams = z.output<typeof listCallsQuerySchema>;

export const exportCallsQuerySchema = queryParams({
  ...callFilterShape,
  format: z.enum(['csv', 'ndjson']).describe('csv (RFC 4180, header row) or ndjson (one CallLeg per line)'),
});
export type ExportCallsQueryParams = z.output<typeof exportCallsQuerySchema>;

export const getCallQuerySchema = queryParams({ provider: provider.optional().describe('required when several providers use this call id') });

export const callEventsQuerySchema = queryParams({
  provider: provider.optional().describe('required when several providers use this call id'),
  tree: flag('true: the events of every leg of the tree, in position order'),
});

export const callEventSchema = z
  .object({
    position,
    callId: z.string().describe('the leg whose stream holds the event'),
    streamVersion: z.number().int().min(1),
    type: z.string(),
    data: z.unknown(),
    receivedAt: isoDateTime,
    occurredAt: nullableTime.describe("provider's own time for the event, when the payload has one"),
    hash: z.string().regex(/^[0-9a-f]{64}$/).describe('hex sha256 of this link of the leg hash chain'),
    chainVerified: z.boolean().describe("the leg's hash chain recomputes from its first event up to and including this one"),
    answers: z
      .string()
      .nullable()
      .optional()
      .describe("tee mode: on the app's answer events (AppAnswered, DialRequested), the receipt id of the delivery they answered"),
    translation: z
      .object({
        version: z.number().int().min(0).describe('version of the translator that made the event from its receipt (0: stored before translators were versioned)'),
        supersededBy: z
          .object({ version: z.number().int().min(1), translatedAt: isoDateTime })
          .nullable()
          .describe('the newer translation of the same receipt that replaced this event for every reader (the event stays in the chain as history); null when the event is current'),
      })
      .nullable()
      .describe("which translation of its receipt the event belongs to (docs/providers.md, \"Translator versions and re-translation\"); null on an app's answer events"),
    receipt: z.object({
      id: z.string(),
      path: z.string().describe('sub-path below /v1/webhooks/<provider>'),
      contentType: z.string().nullable(),
      body: z.string().describe('the raw body exactly as received: UTF-8 text, or base64 when bodyEncoding is base64'),
      bodyEncoding: z.enum(['utf8', 'base64']).describe('utf8 when the stored bytes are valid UTF-8, else base64 of the bytes'),
      signature: z.object({
        status: z.enum(['verified', 'unverified', 'not-checked']),
        timestamp: nullableTime.describe('signed timestamp (FreeClimb, jambonz)'),
        header: z
          .string()
          .nullable()
          .describe('fingerprint of the signature header received (FreeClimb-Signature, Jambonz-Signature, X-Twilio-Signature): "sha256:" and the first 16 hex digits of its sha256; never the signature itself'),
      }),
      headers: z.record(z.string(), z.string()).describe('the request headers kept for the audit (an allow-list that holds no credentials), lower-case names'),
    }),
  })
  .meta({ id: 'CallEvent' });
export type CallEventDto = z.infer<typeof callEventSchema>;

export const callEventsSchema = z
  .object({
    data: z.array(callEventSchema),
    chain: z.object({ valid: z.boolean().describe("every listed leg's hash chain recomputes from its stored events and receipts") }),
  })
  .meta({ id: 'CallEvents' });

export const listRecordingsQuerySchema = queryParams({
  callId: z.string().min(1).max(200).optional().describe("recordings of every leg of this leg's tree"),
  provider: provider.optional(),
  accountId: z.string().min(1).max(200).optional(),
  since: z.iso.datetime({ offset: true }).optional().describe('createdAt >= since'),
  until: z.iso.datetime({ offset: true }).optional().describe('createdAt < until'),
  limit: z.coerce.number().int().min(1).max(1000).default(50).describe('page size, 1 to 1000'),
  cursor: z.string().min(1).max(2000).optional().describe('nextCursor of the previous page, with the same filters'),
});
export type ListRecordingsQueryParams = z.output<typeof listRecordingsQuerySchema>;

export const recordingPageSchema = z
  .object({ data: z.array(recordingSchema), nextCursor: z.string().nullable() })
  .meta({ id: 'RecordingPage' });
