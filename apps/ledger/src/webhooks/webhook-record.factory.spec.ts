import { describe, expect, it } from 'vitest';
import { newEvent, type TranslatedEvent } from '@lib/ledger';
import { ProviderRegistry } from '@lib/providers';
import { buildWebhookRecord } from './webhook-record.factory.js';
import type { IngestWebhookInput } from './ingest-webhook.command.js';

const input = (body: string, path = 'amd'): IngestWebhookInput => ({
  provider: 'twilio', rawBody: Buffer.from(body), contentType: 'application/x-www-form-urlencoded', path, query: '', headers: {},
  remoteAddr: null, receivedAt: new Date(0), signature: { status: 'verified', timestamp: null }, source: 'live',
});

/** The real adapters, with one translator swapped for a stub that answers what a buggy translator could. */
const registryAnswering = (events: unknown[]) => {
  const registry = new ProviderRegistry({ freeclimb: [], jambonz: [], twilio: ['t'.repeat(16)], restcomm: [] }, undefined);
  registry.get('twilio').translate = () => events as TranslatedEvent[];
  return registry;
};

describe('buildWebhookRecord: the event schemas at the write boundary', () => {
  it('stores an event whose data fits its schema as translated (numbers bounded)', () => {
    const ok = newEvent('CallCompleted', 'CA1', { outcome: 'busy', sipStatus: 486.5 }, { accountId: 'AC' });
    const { events } = buildWebhookRecord(input('x'), registryAnswering([ok]));
    expect(events).toEqual([{ ...ok, data: { outcome: 'busy', invalidFields: [{ field: 'sipStatus', value: '486.5', reason: 'not an integer' }] } }]);
  });

  it('keeps an event whose data does not fit as unrecognized, naming the problem, on the same leg', () => {
    const bad = newEvent('RecordingAvailable', 'CA1', { url: 42, scope: 'call' } as never, { accountId: 'AC' });
    const { events } = buildWebhookRecord(input('x'), registryAnswering([bad]));
    expect(events).toEqual([
      expect.objectContaining({ type: 'UnrecognizedWebhook', legId: 'CA1', accountId: 'AC', data: { reason: expect.stringMatching(/^translated RecordingAvailable does not fit its schema: RecordingAvailable\.url: /) } }),
    ]);
  });

  it('turns an empty event into unrecognized instead of failing the delivery', () => {
    expect(buildWebhookRecord(input('x'), registryAnswering([null])).events).toEqual([expect.objectContaining({ type: 'UnrecognizedWebhook' })]);
  });

  it('keeps a Twilio AMD callback with an empty AnsweredBy (was a null event)', () => {
    const registry = new ProviderRegistry({ freeclimb: [], jambonz: [], twilio: ['t'.repeat(16)], restcomm: [] }, undefined);
    const { events } = buildWebhookRecord(input('CallSid=CA1&AccountSid=AC1&AnsweredBy='), registry);
    expect(events).toEqual([expect.objectContaining({ type: 'UnrecognizedWebhook', legId: 'CA1' })]);
  });
});
