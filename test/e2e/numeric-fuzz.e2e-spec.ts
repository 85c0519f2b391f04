import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventStoreRepository } from '@lib/event-store';
import { newEvent, NUMERIC_FIELDS, numberProblem, type CallEventType } from '@lib/ledger';
import type { Projector } from '@lib/projections';
import { freeclimbRequest, jambonzRequest, restcommRequest, twilioRequest, type SignedRequest } from '../support/signing.js';
import { API_KEY, readyProjector, SECRETS, startTestApp, type TestApp } from '../support/test-app.js';

/**
 * Every number every dialect carries, fuzzed through live ingest and through POST /v1/import: out-of-range values,
 * fractions where integers belong, NaN/Infinity/1e400, negatives, huge digit strings. Before the bounds check, one
 * of them stored in a signed delivery stopped the call-leg projection for good (sip_status is an integer column,
 * the rollups bigint milliseconds) and no later call ever showed. Now: every request is answered 2xx/4xx, the
 * projections stay running and reach the head with nothing to park, a later call is visible via minPosition, the
 * chain verifies, no stored event holds a number outside its bounds, and the bad ones are reported on the legs.
 */
let t: TestApp;
let projector: Projector;
beforeAll(async () => {
  t = await startTestApp({ ...SECRETS, LEDGER_SIGNATURE_FAILURE_LIMIT: '0' });
  projector = await readyProjector(t);
});
afterAll(async () => t.close());

const auth = { authorization: `Bearer ${API_KEY}` };

/** Number-ish text: what a field may hold, valid or not. */
const numberText = fc.oneof(
  fc.constantFrom(
    '99999999999999999999', '-99999999999999999999', '1e400', '-1e400', '1e308', '4.9e-324', 'NaN', 'Infinity', '-Infinity', '-1', '-0',
    '0', '486.5', '0.0001', '2147483647', '2147483648', '9223372036854775807', '9223372036854775808', '', 'null', '0x1F', ' 42 ', '1_000',
    '200', '487', '74', '8.42',
  ),
  fc.double({ noNaN: false }).map(String),
  fc.integer().map(String),
  fc.bigInt({ min: -(10n ** 30n), max: 10n ** 30n }).map(String),
  fc.nat(100_000).map(String),
);
const JSON_NUMBER = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?$/;
/** In a JSON body a value goes in as a bare number token when it is one (1e400 included), else as a string. */
const jsonValue = (text: string) => (JSON_NUMBER.test(text) ? text : JSON.stringify(text));
/** JSON text with each `"@name"` placeholder replaced by the raw token, so that 1e400 reaches the parser as written. */
const jsonBody = (template: Record<string, unknown>, numbers: Record<string, string>) =>
  JSON.stringify(template).replace(/"@(\w+)"/g, (_m, name: string) => jsonValue(numbers[name] ?? '0'));

interface Sample {
  provider: 'freeclimb' | 'jambonz' | 'twilio' | 'restcomm';
  path: string;
  contentType: string;
  body: string;
  /** Twilio signs the form fields. */
  form?: Record<string, string>;
}

type Template = (callId: string, n: Record<string, string>) => Sample;

const fcJson = (body: Record<string, unknown>, n: Record<string, string>): Sample => ({ provider: 'freeclimb', path: '', contentType: 'application/json', body: jsonBody(body, n) });
const base = (callId: string) => ({ accountId: 'AC-fuzz', callId, parentCallId: null, from: '+1', to: '+2', direction: 'inbound', callStatus: 'completed' });
const FREECLIMB: Template[] = [
  (id, n) => fcJson({ ...base(id), requestType: 'callStatus', callDuration: '@a', callEndedReason: 'farEndHangup', recordingUrl: 'https://x/r.wav', recordingId: `RE${id}`, recordingDurationSec: '@b' }, n),
  (id, n) => fcJson({ ...base(id), requestType: 'record', recordingUrl: 'https://x/u.wav', recordingId: `RU${id}`, recordingDurationSec: '@a' }, n),
  (id, n) => fcJson({ ...base(id), requestType: 'transcribe', recordingUrl: 'https://x/t.wav', recordingId: `RT${id}`, recordingDurationMs: '@a', transcript: 'hi' }, n),
  (id, n) => fcJson({ ...base(id), requestType: 'getSpeech', reason: 'recognition', recognitionResult: 'yes', confidence: '@a' }, n),
  (id, n) => fcJson({ ...base(id), requestType: 'addToQueueNotification', queueId: 'QU1', queueTime: '@a' }, n),
  (id, n) => fcJson({ ...base(id), requestType: 'removeFromQueueNotification', queueId: 'QU1', queueTime: '@a', queueResult: 'dequeued' }, n),
  (id, n) => fcJson({ ...base(id), requestType: 'conferenceRecordingStatus', conferenceId: 'CF1', status: 'completed', recordingUrl: 'https://x/c.wav', recordingId: `RC${id}`, recordingDurationSec: '@a' }, n),
];

const jzJson = (path: string, body: Record<string, unknown>, n: Record<string, string>): Sample => ({ provider: 'jambonz', path, contentType: 'application/json', body: jsonBody(body, n) });
const callInfo = (id: string, status: string) => ({ call_sid: id, account_sid: 'AC-fuzz', direction: 'inbound', from: '+1', to: '+2', call_status: status });
const JAMBONZ: Template[] = [
  (id, n) => jzJson('/status', { ...callInfo(id, 'completed'), sip_status: '@a', duration: '@b', call_termination_by: 'caller' }, n),
  (id, n) => jzJson('/status', { ...callInfo(id, 'ringing'), sip_status: '@a' }, n),
  (id, n) => jzJson('/status', { ...callInfo(id, 'in-progress'), sip_status: '@a' }, n),
  (id, n) => jzJson('/status', { ...callInfo(id, 'no-answer'), parent_call_sid: `${id}-p`, sip_status: '@a' }, n),
  (id, n) => jzJson('/dial-action', { ...callInfo(id, 'in-progress'), sip_status: '@a', dial_call_status: 'completed', dial_sip_status: '@b', dial_call_sid: `${id}-c` }, n),
  (id, n) => jzJson('/conference', { ...callInfo(id, 'in-progress'), event: 'join', conference_sid: 'CF1', members: '@a', time: '2026-01-05T14:05:50.120Z' }, n),
  (id, n) => jzJson('/gather', { ...callInfo(id, 'in-progress'), reason: 'speechDetected', speech: { is_final: true, alternatives: [{ transcript: 'yes', confidence: '@a' }] } }, n),
];

const form = (provider: 'twilio' | 'restcomm', path: string, fields: Record<string, string>): Sample => ({
  provider, path, contentType: 'application/x-www-form-urlencoded', body: new URLSearchParams(fields).toString(), form: fields,
});
const rc = (id: string) => ({ AccountSid: 'AC-fuzz', CallSid: id, From: '+1', To: '+2', Direction: 'inbound' });
const RCML = (provider: 'twilio' | 'restcomm'): Template[] => [
  (id, n) => form(provider, '/status', { ...rc(id), CallStatus: 'completed', CallbackSource: 'call-progress-events', CallDuration: n.a!, SipResponseCode: n.b!, SequenceNumber: n.c!, RecordingUrl: 'https://x/r.wav', RecordingSid: `RE${id}`, RecordingDuration: n.d! }),
  (id, n) => form(provider, '/status', { ...rc(id), CallStatus: 'in-progress', CallbackSource: 'call-progress-events', SipResponseCode: n.a!, SequenceNumber: n.b! }),
  (id, n) => form(provider, '/status', { ...rc(id), CallStatus: 'busy', CallbackSource: 'call-progress-events', CallDuration: n.a!, SipResponseCode: n.b! }),
  (id, n) => form(provider, '/dial-action', { ...rc(id), CallStatus: 'in-progress', DialCallStatus: 'completed', DialCallSid: `${id}-c`, DialCallDuration: n.a!, DialRingDuration: n.b!, DialSipResponseCode: n.c! }),
  (id, n) => form(provider, '/recording', { ...rc(id), RecordingStatus: 'completed', RecordingUrl: 'https://x/d.wav', RecordingSid: `RD${id}`, RecordingDuration: n.a! }),
  (id, n) => form(provider, '/gather', { ...rc(id), CallStatus: 'in-progress', SpeechResult: 'yes', Confidence: n.a! }),
];
const TEMPLATES: Template[] = [...FREECLIMB, ...JAMBONZ, ...RCML('twilio'), ...RCML('restcomm')];

let seq = 0;
const sampleArb = fc
  .record({ template: fc.nat(TEMPLATES.length - 1), n: fc.record({ a: numberText, b: numberText, c: numberText, d: numberText }) })
  .map(({ template, n }) => TEMPLATES[template]!(`CA-num-${++seq}`, n));

const signed = (s: Sample): SignedRequest => {
  switch (s.provider) {
    case 'freeclimb': return freeclimbRequest(s.body, s.path);
    case 'jambonz': return jambonzRequest(s.body, s.path);
    case 'twilio': return twilioRequest(s.form!, s.path);
    case 'restcomm': return restcommRequest(s.body, s.path);
  }
};

const head = async () => (await sql<{ p: string | null }>`SELECT max(global_position)::text AS p FROM events`.execute(t.db.db)).rows[0]!.p ?? '0';

/** The projections are healthy: running, at the head, and nothing had to be parked (the bounds kept it out). */
const expectHealthy = async () => {
  expect(await projector.waitFor(await head(), 60_000)).toBe(true);
  const res = await t.app.inject({ method: 'GET', url: '/v1/admin/projections', headers: auth });
  expect(res.statusCode).toBe(200);
  for (const p of res.json().data as { name: string; state: string; lagEvents: number; parkedEvents: number; checkpoint: { position: string } }[]) {
    expect(p, p.name).toMatchObject({ state: 'running', lagEvents: 0, parkedEvents: 0 });
  }
};

describe('numeric fields of every dialect, fuzzed', () => {
  it('live ingest: every request answered 2xx/4xx, never 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(sampleArb, async (s) => {
        const req = signed(s);
        const res = await t.app.inject({ method: 'POST', url: req.url, headers: req.headers, payload: req.payload });
        expect(res.statusCode, `${s.provider} ${s.body.slice(0, 300)}: ${res.body.slice(0, 200)}`).toBeLessThan(500);
        expect(res.statusCode).toBe(200);
      }),
      { numRuns: 200 },
    );
    await expectHealthy();
  });

  it('POST /v1/import: every line answered, never 5xx', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(sampleArb, { minLength: 1, maxLength: 20 }), async (samples) => {
        const payload = samples
          .map((s) => JSON.stringify({ provider: s.provider, receivedAt: new Date().toISOString(), contentType: s.contentType, body: s.body, path: s.path }))
          .join('\n');
        const res = await t.app.inject({ method: 'POST', url: '/v1/import', headers: { ...auth, 'content-type': 'application/x-ndjson' }, payload });
        expect(res.statusCode, res.body.slice(0, 300)).toBe(200);
        expect(res.json()).toMatchObject({ imported: samples.length, rejected: [] });
      }),
      { numRuns: 30 },
    );
    await expectHealthy();
  });

  it('afterwards: a later normal call is visible via minPosition, the chain verifies, no stored number is out of bounds, and the bad ones show on their legs', async () => {
    const res = await t.app.inject({
      ...(() => {
        const r = freeclimbRequest(JSON.stringify({ ...base('CA-after-fuzz'), requestType: 'inboundCall', callStatus: 'ringing' }));
        return { method: 'POST' as const, url: r.url, headers: r.headers, payload: r.payload };
      })(),
    });
    expect(res.statusCode).toBe(200);
    const call = await t.app.inject({ method: 'GET', url: `/v1/calls/CA-after-fuzz?minPosition=${res.json().position}`, headers: auth });
    expect(call.statusCode).toBe(200);
    expect(call.json()).toMatchObject({ callId: 'CA-after-fuzz', status: 'ringing', invalidFields: [], parkedEvents: 0 });

    const audit = await t.app.inject({ method: 'GET', url: '/v1/audit/verify', headers: auth });
    expect(audit.statusCode).toBe(200);
    expect(audit.json()).toMatchObject({ valid: true, broken: [] });

    // What was stored as data is within its bounds; what was not is listed in the event.
    const events = await sql<{ type: CallEventType; data: Record<string, unknown>; seq: unknown }>`
      SELECT type, data, metadata->'providerSeq' AS seq FROM events`.execute(t.db.db);
    let listed = 0;
    for (const e of events.rows) {
      for (const [field, schema] of Object.entries(NUMERIC_FIELDS[e.type] ?? {})) {
        if (e.data[field] !== undefined && e.data[field] !== null) expect(numberProblem(schema, e.data[field]), `${e.type}.${field} = ${String(e.data[field])}`).toBeNull();
      }
      if (typeof e.seq === 'number') expect(Number.isSafeInteger(e.seq) && e.seq >= 0).toBe(true);
      if (Array.isArray(e.data.invalidFields)) listed += 1;
    }
    expect(listed).toBeGreaterThan(0);
    const legs = await sql<{ n: string }>`SELECT count(*)::text AS n FROM call_legs WHERE jsonb_array_length(invalid_fields) > 0`.execute(t.db.db);
    expect(Number(legs.rows[0]!.n)).toBeGreaterThan(0);
  });
});

describe('a poison event stored before the bounds existed (bypassing translation)', () => {
  it('is parked; the leg shows it (parkedEvents) and its other events; the status lists it', async () => {
    const body = Buffer.from('{"poison":true}');
    const [receipt] = await new EventStoreRepository(t.db.db).appendBatch([{
      receipt: {
        provider: 'jambonz', body, bodySha256: createHash('sha256').update(body).digest(), contentType: 'application/json', path: '/status', query: '',
        headers: {}, remoteAddr: null, receivedAt: new Date(), source: 'import', signatureStatus: 'not-checked', signatureTimestamp: null,
      },
      events: [
        newEvent('CallInitiated', 'CA-poisoned', { direction: 'inbound', from: '+1', to: '+2' }, { accountId: 'AC-fuzz' }),
        // No URL: recordings.url is NOT NULL, so the read model refuses it (SQLSTATE 23502) whatever the code.
        newEvent('RecordingAvailable', 'CA-poisoned', { url: null, scope: 'call' } as never, { accountId: 'AC-fuzz' }),
        // A SIP status the integer column cannot hold, as a store written before the bounds would have it.
        newEvent('CallAnswered', 'CA-poisoned', { sipStatus: 1e12 }, { accountId: 'AC-fuzz' }),
      ],
    }]);
    const call = await t.app.inject({ method: 'GET', url: `/v1/calls/CA-poisoned?minPosition=${receipt!.position}`, headers: auth });
    expect(call.statusCode).toBe(200);
    expect(call.json()).toMatchObject({
      status: 'in-progress', sipStatus: null, recordings: [], parkedEvents: 1,
      invalidFields: [expect.objectContaining({ type: 'CallAnswered', field: 'sipStatus', value: '1000000000000', reason: 'above 699' })],
    });
    const status = await t.app.inject({ method: 'GET', url: '/v1/admin/projections', headers: auth });
    const legs = (status.json().data as { name: string; state: string; parkedEvents: number; parked: { stream: string; type: string }[] }[]).find((p) => p.name === 'call_legs')!;
    expect(legs).toMatchObject({ state: 'running', parkedEvents: 1, parked: [expect.objectContaining({ stream: 'callLeg-jambonz:CA-poisoned', type: 'RecordingAvailable' })] });
  });
});
