import { storableEvents, unrecognized, type Provider, type TranslatedEvent } from '@lib/ledger';
import type { ProviderAdapter } from './provider-adapter.js';

/**
 * The version of each provider's translator. Bump a provider's number in the same commit as any change to what
 * its translator makes of a body (an event added, a field read, a rule changed): at the next start the service
 * re-translates that provider's stored receipts and appends the new translation wherever it differs
 * (docs/providers.md, "Translator versions and re-translation").
 *
 * Events stored before translators were versioned carry no version and count as version 0, whether the
 * translator that wrote them predates issue 11 or not; version 1 is the translators as issue 11 left them. A
 * receipt whose version-0 events equal its version-1 translation keeps them: nothing is appended.
 */
export const TRANSLATOR_VERSIONS: Readonly<Record<Provider, number>> = {
  freeclimb: 1,
  jambonz: 1,
  twilio: 1,
  restcomm: 1,
};

/** What a translator reads of a stored delivery: exactly what the receipt keeps (the query after redaction). */
export interface DeliveryToTranslate {
  provider: Provider;
  body: Buffer;
  path: string;
  query: string;
  contentType: string | null;
}

/**
 * A delivery's neutral events, as ingest and re-translation both make them: a translator that throws gives an
 * UnrecognizedWebhook with the reason, and every number is bounded to what the read model can hold.
 */
export const translateDelivery = (adapter: ProviderAdapter, d: DeliveryToTranslate): TranslatedEvent[] => {
  let events: TranslatedEvent[];
  try {
    events = adapter.translate(d.body, { provider: d.provider, path: d.path, query: new URLSearchParams(d.query), contentType: d.contentType });
  } catch (err) {
    events = [unrecognized(`translator failed: ${(err as Error).message}`)];
  }
  return storableEvents(events);
};
