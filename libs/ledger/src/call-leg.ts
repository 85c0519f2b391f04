import type { CallEventDataMap, CallEventType, Direction, LegParty, Provider, RecordingScope } from './call-leg.events.js';

/** One stored event as the projections see it (read back from the event store). */
export interface LedgerEvent<K extends CallEventType = CallEventType> {
  /** Global position, as a decimal string (int8). */
  position: string;
  eventId: string;
  type: K;
  data: CallEventDataMap[K];
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
  /** Conflicting parent assertions are kept and flagged (providers.md §4.6-3). */
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
}
