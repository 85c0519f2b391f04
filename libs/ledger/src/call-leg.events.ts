/**
 * Provider-neutral vocabulary (shared/reference/providers.md §4). Every webhook is translated into zero or
 * more of these; the raw request is kept beside them, so a translation bug never loses information.
 */
export const PROVIDERS = ['freeclimb', 'jambonz', 'twilio', 'restcomm'] as const;
export type Provider = (typeof PROVIDERS)[number];
export const isProvider = (value: string): value is Provider => (PROVIDERS as readonly string[]).includes(value);

export const DIRECTIONS = ['inbound', 'outbound-api', 'outbound-dial'] as const;
export type Direction = (typeof DIRECTIONS)[number];

export const OUTCOMES = ['completed', 'busy', 'no-answer', 'failed', 'canceled', 'unanswered-unknown', 'unknown'] as const;
export type Outcome = (typeof OUTCOMES)[number];

export type RecordingScope = 'call' | 'dial' | 'utterance' | 'conference';
export type MachineResult = 'human' | 'machine' | 'fax' | 'beep' | 'unknown';

export interface CallEventDataMap {
  CallInitiated: { direction: Direction | null; from: string | null; to: string | null };
  CallRinging: { earlyMedia?: boolean; sipStatus?: number };
  CallAnswered: { sipStatus?: number };
  CallCompleted: {
    outcome: Outcome;
    durationSec?: number;
    endReason?: string;
    /** Why it ended, in the provider's words (Twilio `ErrorCode: ErrorMessage`). */
    endReasonDetail?: string;
    sipStatus?: number;
    /** Which side hung up, as the provider says it (jambonz `call_termination_by`: `caller`, `jambonz`). */
    terminatedBy?: string;
  };
  ChildLegDialed: { childLegId: string; parentLegId: string };
  DialCompleted: {
    childLegId?: string;
    outcome: Outcome;
    durationSec?: number;
    ringDurationSec?: number;
    sipStatus?: number;
  };
  /** `detail` keeps the provider's own value (Twilio `machine_end_beep`, jambonz `amd_tone_detected`...). */
  MachineDetected: { result: MachineResult; detail?: string; detectionMs?: number };
  RecordingAvailable: {
    recordingId?: string;
    url: string;
    durationSec?: number;
    scope: RecordingScope;
    status?: string;
  };
  ConferenceJoined: { conferenceId: string; members?: number };
  ConferenceLeft: { conferenceId: string; members?: number };
  ConferenceStatusChanged: { conferenceId: string; status: string };
  DtmfReceived: { digits: string; reason?: string; source: 'gather' | 'dial-capture' | 'call-control' };
  SpeechRecognized: { text: string; confidence?: number };
  QueueEntered: { queueId: string; queueTimeSec?: number; result?: string };
  QueueLeft: { queueId: string; queueTimeSec?: number; result?: string };
  /** Recognised webhook with no leg-state meaning (redirect, queueWait, talking events, gather timeout...). */
  AppHook: { kind: string };
  /** Kept verbatim, never dropped: the reason says why it could not be translated. */
  UnrecognizedWebhook: { reason: string };
}

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
