import type { Direction, LegParty, Provider, RecordingScope } from './call-leg.events.js';
import type { EventDataMap, StoredEventType } from './event-schemas.js';

/**
 * How far an event can be trusted, from its receipt: `verified` (signature or token checked), `imported` (uploaded
 * with an import-scoped API key, no signature check), `unverified` (accepted unsigned: LEDGER_ACCEPT_UNSIGNED).
 */
export type Verification = 'verified' | 'imported' | 'unverified';
export const VERIFICATIONS = ['verified', 'imported', 'unverified'] as const satisfies readonly Verification[];

/** The receipt's provenance as an event's verification: an import is never more than `imported`. */
export const receiptVerification = (source: string | null | undefined, signatureStatus: string | null | undefined): Verification =>
  source === 'import' || signatureStatus === 'not-checked' ? 'imported' : signatureStatus === 'verified' ? 'verified' : 'unverified';

const TRUST: Record<Verification, number> = { unverified: 0, imported: 1, verified: 2 };

/**
 * A leg is as trustworthy as the weakest event that shaped it: one imported event makes a verified leg `imported`,
 * one unsigned event makes it `unverified`. An event of unknown provenance counts as `unverified`.
 */
export const weakestVerification = (events: readonly { verification?: Verification }[]): Verification => {
  let weakest: Verification = 'verified';
  for (const e of events) {
    const v = e.verification ?? 'unverified';
    if (TRUST[v] < TRUST[weakest]) weakest = v;
  }
  return weakest;
};

/**
 * One stored event as the projections see it (read back from the event store through `parseEvent`): a call
 * event, or an app-answer event (tee mode, on its own streams, which the leg projections do not fold).
 */
export interface LedgerEvent<K extends StoredEventType = StoredEventType> {
  /** Global position, as a decimal string (int8). */
  position: string;
  eventId: string;
  type: K;
  data: EventDataMap[K];
  provider: Provider;
  legId: string | null;
  accountId: string | null;
  parentLegId: string | null;
  party: LegParty | null;
  providerSeq: number | null;
  /** Provider's own event time, ISO-8601, or null. */
  occurredAt: string | null;
  /** Verified signature time (FreeClimb, jambonz), ISO-8601, or null. */
  sentAt: string | null;
  /** Arrival at the ledger (or the imported receivedAt), ISO-8601. */
  receivedAt: string;
  /** From the event's receipt (source, signature status); absent counts as `unverified`. */
  verification?: Verification;
}

export type LegStatus = 'initiated' | 'ringing' | 'in-progress' | 'completed' | 'busy' | 'no-answer' | 'failed' | 'canceled';
export type DurationSource = 'provider' | 'derived';
export type AnsweredBy = 'human' | 'machine' | 'fax' | null;
/**
 * Which clock a leg time was read from: `provider` (a time in the payload: Twilio/Restcomm `Timestamp`, Restcomm
 * `CallTimestamp`, jambonz conference `time`), `signature` (the signed send time `t` of FreeClimb/jambonz),
 * `received` (our arrival time, or an import line's `receivedAt`), `derived` (the end minus the provider's duration).
 */
export type TimeSource = 'provider' | 'signature' | 'received' | 'derived';

export interface RecordingRow {
  recordingId: string;
  url: string;
  durationSec: number | null;
  scope: RecordingScope;
  /** Leg the recording belongs to. */
  callId: string;
  createdAt: string;
}

/** The call-leg read model (one row per provider + call id). Times are ISO-8601 strings. */
export interface CallLegRow {
  provider: Provider;
  accountId: string | null;
  callId: string;
  parentCallId: string | null;
  direction: Direction | null;
  from: string | null;
  to: string | null;
  status: LegStatus;
  startedAt: string | null;
  answeredAt: string | null;
  endedAt: string | null;
  ringDurationSec: number | null;
  talkDurationSec: number | null;
  ringDurationSource: DurationSource | null;
  talkDurationSource: DurationSource | null;
  answeredBy: AnsweredBy;
  endReason: string | null;
  sipStatus: number | null;
  conferenceIds: string[];
  recordings: RecordingRow[];
  /** The terminal event has arrived (and the provider-reported duration, where the provider reports one). */
  final: boolean;
  eventCount: number;
  lastPosition: string;
  /** Conflicting parent assertions are kept and flagged (docs/providers.md, "Reconstruction rules"). */
  linkConflict: boolean;
  /** The provider's own AMD value (Twilio `machine_end_beep`, FreeClimb `answering machine`, jambonz `amd_tone_detected`). */
  answeredByDetail: string | null;
  /** Which side hung up, in the provider's words (jambonz `call_termination_by`; FreeClimb from `callEndedReason`). */
  hangupBy: string | null;
  /** Why the leg ended, in the provider's words (Twilio `ErrorCode: ErrorMessage`). */
  endReasonDetail: string | null;
  startedAtSource: TimeSource | null;
  answeredAtSource: TimeSource | null;
  endedAtSource: TimeSource | null;
  /** Post-dial delay: start to first ringing, when both are known (ringDurationSec includes it). */
  pddSec: number | null;
  /** The weakest verification among the events that shaped the leg (weakestVerification). */
  verification: Verification;
  /**
   * Numbers of this leg's events (and of the parent's dial result naming it) that were out of bounds
   * (numeric-bounds.ts) and so not projected, oldest first; at most 50. The raw bodies keep them.
   */
  invalidFields: LegInvalidField[];
}

/** An out-of-bounds number, with the event that carried it (null for a duration derived from event times). */
export interface LegInvalidField {
  position: string | null;
  type: string | null;
  field: string;
  value: string;
  reason: string;
}
