import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { boundEventNumbers, eventDataProblems, PROVIDERS, type Provider, type TranslatedEvent } from '@lib/ledger';
import { translateFreeclimbWebhook, translateJambonzWebhook, translateRcmlWebhook } from '@lib/providers';
import { simulate } from '@lib/simulator';

/**
 * The write boundary of the event schemas (libs/ledger event-schemas.ts): whatever a translator makes of a body,
 * once its numbers are bounded (as ingest does), every event's data fits its type's schema.
 */
type Translate = (body: Buffer, ctx: { provider: Provider; path: string; query: URLSearchParams; contentType: string | null }) => TranslatedEvent[];
const TRANSLATORS: Record<Provider, Translate> = {
  freeclimb: translateFreeclimbWebhook as Translate,
  jambonz: translateJambonzWebhook as Translate,
  twilio: translateRcmlWebhook as Translate,
  restcomm: translateRcmlWebhook as Translate,
};

const problemsOf = (provider: Provider, body: Buffer, path: string, contentType: string | null, query = new URLSearchParams()) =>
  TRANSLATORS[provider](body, { provider, path, query, contentType })
    .map(boundEventNumbers)
    .flatMap((e) => eventDataProblems(e.type, e.data));

describe('translator output against the event schemas', () => {
  it('every simulated delivery of every provider and kind', { timeout: 30_000 }, () => {
    const run = simulate({ seed: 'schemas', calls: 150, provider: 'mixed', baseTimeMs: Date.UTC(2026, 0, 5, 12), mode: 'import', days: 2, rate: 20, maxTalkSec: 300 });
    let events = 0;
    for (const d of run.deliveries) {
      const problems = problemsOf(d.provider, Buffer.from(d.body), d.path.replace(/^\//, ''), d.contentType, new URLSearchParams(d.query));
      expect(problems, `${d.provider}${d.path} ${d.body}`).toEqual([]);
      events += 1;
    }
    expect(events).toBeGreaterThan(400);
  });

  it('every published payload of the fixture corpus', () => {
    const root = join('test', 'fixtures', 'providers');
    let n = 0;
    for (const provider of PROVIDERS) {
      for (const file of readdirSync(join(root, provider)).filter((f) => /\.(json|form)$/.test(f) && !f.endsWith('.meta.json'))) {
        const meta = JSON.parse(readFileSync(join(root, provider, file.replace(/\.(json|form)$/, '.meta.json')), 'utf8')) as { path: string };
        const contentType = file.endsWith('.form') ? 'application/x-www-form-urlencoded' : 'application/json';
        expect(problemsOf(provider, readFileSync(join(root, provider, file)), meta.path.replace(/^\//, ''), contentType), `${provider}/${file}`).toEqual([]);
        n += 1;
      }
    }
    expect(n).toBeGreaterThan(10);
  });

  it('property: any JSON body with the providers\' own keys and values of any JSON type', () => {
    const keys = [
      'requestType', 'callId', 'callStatus', 'direction', 'from', 'to', 'parentCallId', 'accountId', 'callDuration', 'recordingUrl', 'recordingId',
      'recordingDurationSec', 'digits', 'reason', 'machineType', 'conferenceId', 'queueId', 'queueResult', 'queueTime', 'dialCallStatus',
      'call_sid', 'call_status', 'sip_status', 'parent_call_sid', 'account_sid', 'duration', 'call_termination_by', 'dial_call_status', 'dial_call_sid',
      'dial_call_duration', 'dial_sip_status', 'amd', 'type', 'speech', 'digits', 'event', 'conference_sid', 'members', 'time', 'hook', 'recording_url',
    ];
    const value = fc.oneof(fc.string(), fc.integer(), fc.double(), fc.boolean(), fc.constant(null), fc.constantFrom('inProgress', 'completed', 'busy', 'in-progress', 'no-answer', 'failed', 'outbound', 'inbound', 'machine', 'human'), fc.array(fc.string(), { maxLength: 2 }), fc.dictionary(fc.constantFrom('type', 'reason', 'alternatives', 'confidence', 'transcript', 'url'), fc.oneof(fc.string(), fc.double(), fc.constant(null))));
    const provider = fc.constantFrom<Provider>('freeclimb', 'jambonz');
    const path = fc.constantFrom('', 'status', 'call', 'dial', 'amd', 'gather', 'conference', 'record', 'queue');
    fc.assert(
      fc.property(provider, path, fc.dictionary(fc.constantFrom(...keys), value), (p, sub, body) => {
        expect(problemsOf(p, Buffer.from(JSON.stringify(body)), sub, 'application/json')).toEqual([]);
      }),
      { numRuns: 2000 },
    );
  });

  it('property: any form body with the RCML keys and text values', () => {
    const keys = ['CallSid', 'CallStatus', 'Direction', 'From', 'To', 'ParentCallSid', 'AccountSid', 'CallDuration', 'DialCallStatus', 'DialCallSid',
      'DialCallDuration', 'RecordingUrl', 'RecordingSid', 'RecordingDuration', 'Digits', 'AnsweredBy', 'SequenceNumber', 'Timestamp', 'SpeechResult', 'Confidence',
      'SipResponseCode', 'QueueSid', 'QueueResult', 'QueueTime', 'ConferenceSid', 'StatusCallbackEvent', 'ErrorCode', 'ErrorMessage', 'CallbackSource'];
    const text = fc.oneof(fc.string(), fc.constantFrom('', 'null', 'completed', 'in-progress', 'busy', 'ringing', 'outbound-dial', 'inbound', '-1', '1e400', '12.5', 'machine_start', 'participant-join'));
    fc.assert(
      fc.property(fc.constantFrom<Provider>('twilio', 'restcomm'), fc.constantFrom('', 'status', 'dial', 'gather', 'record', 'conference', 'queue'), fc.dictionary(fc.constantFrom(...keys), text), (p, sub, form) => {
        expect(problemsOf(p, Buffer.from(new URLSearchParams(form).toString()), sub, 'application/x-www-form-urlencoded')).toEqual([]);
      }),
      { numRuns: 2000 },
    );
  });
});
