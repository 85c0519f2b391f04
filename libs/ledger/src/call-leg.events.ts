import { z } from 'zod';

/**
 * Provider-neutral vocabulary (docs/providers.md, "What is read from each webhook kind"). Every webhook is translated into zero or
 * more of these; the raw request is kept beside them, so a translation bug never loses information.
 */
export const PROVIDERS = ['freeclimb', 'jambonz', 'twilio', 'restcomm'] as const;
export type Provider = (typeof PROVIDERS)[number];
export const isProvider = (value: string): value is Provider => (PROVIDERS as readonly string[]).includes(value);

export const DIRECTIONS = ['inbound', 'outbound-api', 'outbound-dial'] as const;
export type Direction = (typeof DIRECTIONS)[number];

export const OUTCOMES = ['completed', 'busy', 'no-answer', 'failed', 'canceled', 'unanswered-unknown', 'unknown'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export const RECORDING_SCOPES = ['call', 'dial', 'utterance', 'conference'] as const;
export type RecordingScope = (typeof RECORDING_SCOPES)[number];
export const MACHINE_RESULTS = ['human', 'machine', 'fax', 'beep', 'unknown'] as const;
export type MachineResult = (typeof MACHINE_RESULTS)[number];

// Numbers are only typed here: their bounds are numeric-bounds.ts's, applied before an event is stored, and a
// stored event of any age is read through them again by the projection.
const num = z.number();
const text = z.string();

/**
 * The data of each event type, as a runtime schema: what the translators must produce and what the store hands
 * back (event-schemas.ts gives each a version and reads old versions through upcasters). The TypeScript types
 * are derived from these, so the two cannot drift.
 */
export const CALL_EVENT_DATA = {
  CallInitiated: z.object({ direction: z.enum(DIRECTIONS).nullable(), from: text.nullable(), to: text.nullable() }),
  CallRinging: z.object({ earlyMedia: z.boolean().optional(), sipStatus: num.optional() }),
  CallAnswered: z.object({ sipStatus: num.optional() }),
  CallCompleted: z.object({
    outcome: z.enum(OUTCOMES),
    durationSec: num.optional(),
    endReason: text.optional(),
    /** Why it ended, in the provider's words (Twilio `ErrorCode: ErrorMessage`). */
    endReasonDetail: text.optional(),
    sipStatus: num.optional(),
    /** Which side hung up, as the provider says it (jambonz `call_termination_by`: `caller`, `jambonz`). */
    terminatedBy: text.optional(),
  }),
  ChildLegDialed: z.object({ childLegId: text, parentLegId: text }),
  DialCompleted: z.object({
    childLegId: text.optional(),
    outcome: z.enum(OUTCOMES),
    durationSec: num.optional(),
    ringDurationSec: num.optional(),
    sipStatus: num.optional(),
  }),
  /** `detail` keeps the provider's own value (Twilio `machine_end_beep`, jambonz `amd_tone_detected`...). */
  MachineDetected: z.object({ result: z.enum(MACHINE_RESULTS), detail: text.optional(), detectionMs: num.optional() }),
  RecordingAvailable: z.object({
    recordingId: text.optional(),
    url: text,
    durationSec: num.optional(),
    scope: z.enum(RECORDING_SCOPES),
    status: text.optional(),
  }),
  ConferenceJoined: z.object({ conferenceId: text, members: num.optional() }),
  ConferenceLeft: z.object({ conferenceId: text, members: num.optional() }),
  ConferenceStatusChanged: z.object({ conferenceId: text, status: text }),
  DtmfReceived: z.object({ digits: text, reason: text.optional(), source: z.enum(['gather', 'dial-capture', 'call-control']) }),
  SpeechRecognized: z.object({ text, confidence: num.optional() }),
  QueueEntered: z.object({ queueId: text, queueTimeSec: num.optional(), result: text.optional() }),
  QueueLeft: z.object({ queueId: text, queueTimeSec: num.optional(), result: text.optional() }),
  /** Recognised webhook with no leg-state meaning (redirect, queueWait, talking events, gather timeout...). */
  AppHook: z.object({ kind: text }),
  /** Kept verbatim, never dropped: the reason says why it could not be translated. */
  UnrecognizedWebhook: z.object({ reason: text }),
} as const;

export type CallEventDataMap = { [K in keyof typeof CALL_EVENT_DATA]: z.infer<(typeof CALL_EVENT_DATA)[K]> };

export type CallEventType = keyof CallEventDataMap;
export const CALL_EVENT_TYPES = [
  'CallInitiated',
  'CallRinging',
  'CallAnswered',
  'CallCompleted',
  'ChildLegDialed',
  'DialCompleted',
  'MachineDetected',
  'RecordingAvailable',
  'ConferenceJoined',
  'ConferenceLeft',
  'ConferenceStatusChanged',
  'DtmfReceived',
  'SpeechRecognized',
  'QueueEntered',
  'QueueLeft',
  'AppHook',
  'UnrecognizedWebhook',
] as const satisfies readonly CallEventType[];

/** Who a leg is, as far as the payload that produced the event says. Late events only enrich. */
export interface LegParty {
  direction: Direction | null;
  from: string | null;
  to: string | null;
}

/**
 * One translated event, before it is stored. `legId` is the provider call id the event is *about*
 * (not always the payload's own call id: a FreeClimb outDialStart is about the child it dialled).
 * A null legId only happens for UnrecognizedWebhook when no call id could be read.
 */
export type TranslatedEvent = {
  [K in CallEventType]: {
    type: K;
    legId: string | null;
    accountId: string | null;
    parentLegId: string | null;
    /** Provider's own event time (Restcomm/Twilio Timestamp, jambonz conference time), ISO-8601, else null. */
    occurredAt: string | null;
    /** Restcomm/Twilio SequenceNumber when present. */
    providerSeq: number | null;
    party: LegParty | null;
    data: CallEventDataMap[K];
  };
}[CallEventType];

export type TranslatedEventOf<K extends CallEventType> = Extract<TranslatedEvent, { type: K }>;

/** What a translator sees of the request besides the body: the sub-path is a hint, never the only key. */
export interface TranslationContext {
  provider: Provider;
  /** Sub-path below /v1/webhooks/<provider>, without leading slash ('' for the base URL). */
  path: string;
  query: URLSearchParams;
  contentType: string | null;
}

export const newEvent = <K extends CallEventType>(
  type: K,
  legId: string | null,
  data: CallEventDataMap[K],
  envelope: Partial<Omit<TranslatedEventOf<K>, 'type' | 'legId' | 'data'>> = {},
): TranslatedEventOf<K> =>
  ({
    type,
    legId,
    accountId: envelope.accountId ?? null,
    parentLegId: envelope.parentLegId ?? null,
    occurredAt: envelope.occurredAt ?? null,
    providerSeq: envelope.providerSeq ?? null,
    party: envelope.party ?? null,
    data,
  }) as TranslatedEventOf<K>;

export const unrecognized = (
  reason: string,
  legId: string | null = null,
  accountId: string | null = null,
): TranslatedEventOf<'UnrecognizedWebhook'> => newEvent('UnrecognizedWebhook', legId, { reason }, { accountId });

/** Lenient numeric read: providers send numbers as strings ("74"), floats ("8.42") or bare keys (""). */
export const toNumber = (value: unknown): number | undefined => {
  if (typeof value === 'number') return Number.isFinite(value) ? value : undefined;
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  if (trimmed === '' || trimmed === 'null') return undefined;
  const n = Number(trimmed);
  return Number.isFinite(n) ? n : undefined;
};

/** Restcomm sends the literal string "null" and bare keys for absent values. */
export const presentString = (value: unknown): string | undefined => {
  if (typeof value !== 'string') return undefined;
  const trimmed = value.trim();
  return trimmed === '' || trimmed === 'null' ? undefined : value;
};
