import { createHash } from 'node:crypto';
import type { WebhookRecord } from '@lib/event-store';
import { newEvent, type TranslatedEvent } from '@lib/ledger';

let seq = 0;

/**
 * A stored-ready jambonz delivery for store-level tests: a unique body (so it is never a duplicate), its sha256,
 * and by default one CallRinging on `legId`. The options change what a test depends on, nothing else.
 */
export const jambonzRecord = (
  legId: string,
  options: { events?: TranslatedEvent[]; body?: string; headers?: Record<string, string>; signatureTimestamp?: Date | null } = {},
): WebhookRecord => {
  const raw = Buffer.from(options.body ?? JSON.stringify({ n: ++seq, legId }));
  return {
    receipt: {
      provider: 'jambonz',
      body: raw,
      bodySha256: createHash('sha256').update(raw).digest(),
      contentType: 'application/json',
      path: 'status',
      query: '',
      headers: options.headers ?? { 'content-type': 'application/json' },
      remoteAddr: '127.0.0.1',
      receivedAt: new Date(),
      source: 'live',
      signatureStatus: 'verified',
      signatureTimestamp: options.signatureTimestamp ?? null,
    },
    events: options.events ?? [newEvent('CallRinging', legId, { sipStatus: 180 }, { accountId: 'acc' })],
  };
};
