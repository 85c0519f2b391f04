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
  source: 'live' | 'import';
  signatureStatus: 'verified' | 'unverified' | 'not-checked';
  signatureTimestamp: Date | null;
}

export interface WebhookRecord {
  receipt: ReceiptInput;
  events: TranslatedEvent[];
}

export interface AppendOutcome {
  receiptId: string;
  /** Global position of the last event this delivery appended (the original's, for a duplicate). */
  position: string | null;
  duplicate: boolean;
  events: string[];
}

/** `category-id`, only the first `-` separates (Message DB convention). */
export const legStreamName = (provider: Provider, legId: string): string => `callLeg-${provider}:${legId}`;
export const unrecognizedStreamName = (provider: Provider): string => `unrecognized-${provider}`;
