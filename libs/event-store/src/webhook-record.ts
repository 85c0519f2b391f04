import type { Provider, TranslatedEvent } from '@lib/ledger';

/** A request exactly as received, ready to be kept. */
export interface ReceiptInput {
  provider: Provider;
  body: Buffer;
  bodySha256: Buffer;
  contentType: string | null;
  /** Sub-path below /v1/webhooks/<provider>. */
  path: string;
  /** Raw query string without the leading `?`. */
  query: string;
  headers: Record<string, string>;
  remoteAddr: string | null;
  receivedAt: Date;
  /** `answer`: an app's answer to a delivery (tee mode); its body is the answer envelope (docs/app-answers.md). */
  source: 'live' | 'import' | 'answer' | 'admin';
  signatureStatus: 'verified' | 'unverified' | 'not-checked';
  signatureTimestamp: Date | null;
}

/** An event read from an app's answer: not a leg event, so it names its own stream (never a `callLeg-` one). */
export type AnswerEvent = Omit<TranslatedEvent, 'type' | 'data'> & { type: 'AppAnswered' | 'DialRequested'; data: Record<string, unknown>; streamName: string };

/** An erasure's record (erasure.repository.ts): it names its stream too. */
export type ErasureEvent = Omit<TranslatedEvent, 'type' | 'data'> & { type: 'SubjectErased' | 'PersonalDataErased'; data: Record<string, unknown>; streamName: string };

export interface WebhookRecord {
  receipt: ReceiptInput;
  events: (TranslatedEvent | AnswerEvent | ErasureEvent)[];
  /**
   * The version of the translator that made `events`, kept in each event's metadata as `translation`. Absent for
   * an app's answer (not a provider translation), and for events written before versions existed (version 0).
   */
  translation?: number;
}

export interface AppendOutcome {
  receiptId: string;
  /** Global position of the last event this delivery appended (the original's, for a duplicate). */
  position: string | null;
  duplicate: boolean;
  events: string[];
}
