import { createHash } from 'node:crypto';
import type { WebhookRecord } from '@lib/event-store';
import { storableEvents, unrecognized, type TranslatedEvent } from '@lib/ledger';
import type { ProviderRegistry } from '@lib/providers';
import type { IngestWebhookInput } from './ingest-webhook.command.js';

/** Headers worth keeping for an audit: what identifies the sender and the delivery, never credentials. */
export const HEADER_ALLOWLIST = [
  'content-type',
  'content-length',
  'user-agent',
  'x-forwarded-for',
  'x-forwarded-proto',
  'x-forwarded-host',
  'x-real-ip',
  'host',
  'b3',
  'traceparent',
  'i-twilio-idempotency-token',
  'x-twilio-signature',
  'freeclimb-signature',
  'jambonz-signature',
  'x-home-region',
  'x-request-id',
] as const;

export const pickHeaders = (headers: Record<string, string | string[] | undefined>): Record<string, string> => {
  const out: Record<string, string> = {};
  for (const name of HEADER_ALLOWLIST) {
    const v = headers[name];
    if (v !== undefined) out[name] = Array.isArray(v) ? v.join(', ') : v;
  }
  return out;
};

/**
 * Restcomm's shared token may ride in the query: it is a credential, so it is not kept. The name is compared
 * decoded, as the token check reads it (`URLSearchParams`): `%74oken=` and `tok%65n=` are the token too. Each
 * other piece of the query is kept exactly as received.
 */
export const redactQuery = (provider: string, query: string): string => {
  if (provider !== 'restcomm' || query === '') return query;
  return query
    .split('&')
    .map((piece) => {
      const [name] = new URLSearchParams(piece).keys();
      return name === 'token' ? 'token=%5Bredacted%5D' : piece;
    })
    .join('&');
};

/** Translation is pure CPU work: it runs before the request joins a group commit, never inside one. */
export const buildWebhookRecord = (input: IngestWebhookInput, providers: ProviderRegistry): WebhookRecord => {
  let events: TranslatedEvent[];
  const query = redactQuery(input.provider, input.query);
  try {
    events = providers.get(input.provider).translate(input.rawBody, {
      provider: input.provider,
      path: input.path,
      query: new URLSearchParams(query),
      contentType: input.contentType,
    });
  } catch (err) {
    events = [unrecognized(`translator failed: ${(err as Error).message}`)];
  }
  // One check of every number after translation, whatever the translator read: a value the read model cannot
  // hold is listed in the event (data.invalidFields) instead of stored as data (numeric-bounds.ts); then each
  // event's data against its schema (event-schemas.ts).
  events = storableEvents(events);
  return {
    receipt: {
      provider: input.provider,
      body: input.rawBody,
      bodySha256: createHash('sha256').update(input.rawBody).digest(),
      contentType: input.contentType,
      path: input.path,
      query,
      headers: input.headers,
      remoteAddr: input.remoteAddr,
      receivedAt: input.receivedAt,
      source: input.source,
      signatureStatus: input.signature.status,
      signatureTimestamp: input.signature.timestamp,
    },
    events,
  };
};
