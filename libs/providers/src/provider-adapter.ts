import type { Provider, TranslatedEvent, TranslationContext } from '@lib/ledger';

export type HeaderBag = Record<string, string | string[] | undefined>;

export interface SignatureInput {
  rawBody: Buffer;
  /** Lower-cased header names, as Node gives them. */
  headers: HeaderBag;
  /** Path and query exactly as the request line carried them (`/v1/webhooks/twilio/status?x=1`). */
  url: string;
  /** Seconds since the epoch; injected so that the window is testable. */
  nowSec: number;
}

export type SignatureVerdict =
  | { status: 'verified'; timestamp: Date | null }
  | { status: 'unverified' }
  | { status: 'rejected'; reason: string };

/**
 * One adapter per provider: how its deliveries are authenticated and how a body becomes neutral events.
 * `translate` is pure and never throws for bad input: it answers UnrecognizedWebhook with the reason.
 */
export interface ProviderAdapter {
  readonly provider: Provider;
  /** True when a secret is configured; false means deliveries are accepted and marked unverified. */
  readonly verifying: boolean;
  verify(input: SignatureInput): SignatureVerdict;
  /** The translator's version (translator-versions.ts): stored with every event it makes. */
  readonly translatorVersion: number;
  translate(rawBody: Buffer, ctx: TranslationContext): TranslatedEvent[];
}

export const headerValue = (headers: HeaderBag, name: string): string | undefined => {
  const value = headers[name.toLowerCase()];
  return Array.isArray(value) ? value[0] : value;
};
