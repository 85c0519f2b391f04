import { generateKeyPairSync } from 'node:crypto';
import { sql } from 'kysely';
import { retranslateStore, verifyAuditExport } from '@lib/event-store';
import { ProviderRegistry, TRANSLATOR_VERSIONS, translateDelivery } from '@lib/providers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_KEY, API_KEY, readyProjector, SECRETS, startTestApp, type TestApp } from '../support/test-app.js';
import { freeclimbRequest, type SignedRequest } from '../support/signing.js';

/**
 * Erasure by subject (issue 16): a caller's number is erased everywhere, and afterwards every chain still verifies
 * (online, and offline from an export, signed checkpoints included), searching by the number finds nothing, another
 * caller's number is still found, and the events route shows the erased markers.
 */
const keys = generateKeyPairSync('ed25519');
const privatePem = keys.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const publicPem = keys.publicKey.export({ type: 'spki', format: 'pem' }).toString();
const ACC = 'ACe511f7e60a7aaec1435ac251c24f6bd698d8dd14';
const ERASED_NUMBER = '+13125550147';
const KEPT_NUMBER = '+13125550199';
const TO = '+13125550100';

let t: TestApp;
let ingested = '0';
const auth = { authorization: `Bearer ${API_KEY}` };
const leg = (callId: string, from: string, status: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ accountId: ACC, callId, callStatus: status, direction: 'inbound', from, to: TO, parentCallId: null, conferenceId: null, queueId: null, requestType: 'callStatus', ...extra });
const post = async (r: SignedRequest) => {
  const res = await t.app.inject({ method: 'POST', url: r.url, headers: r.headers, payload: r.payload });
  expect(res.statusCode, res.body).toBe(200);
  return res.json() as { position: string };
};
const get = async (url: string, headers: Record<string, string> = auth) => t.app.inject({ method: 'GET', url, headers });
const exportLines = async () => {
  const res = await get('/v1/audit/export');
  expect(res.statusCode).toBe(200);
  return res.body.trimEnd().split('\n');
};

beforeAll(async () => {
  t = await startTestApp({ ...SECRETS, LEDGER_CHECKPOINT_SIGNING_KEY: privatePem });
  await readyProjector(t);
  for (const [callId, from] of [['CA-erase-me', ERASED_NUMBER], ['CA-keep-me', KEPT_NUMBER]] as const) {
    await post(freeclimbRequest(leg(callId, from, 'ringing', { requestType: 'inboundCall' }), '/voice'));
    await post(freeclimbRequest(leg(callId, from, 'inProgress'), '/status'));
    ingested = (await post(freeclimbRequest(leg(callId, from, 'completed', { callDuration: 10 }), '/status'))).position;
  }
  // A signed checkpoint of the heads before the erasure: it must keep verifying after it.
  expect((await t.app.inject({ method: 'POST', url: '/v1/admin/checkpoints', headers: auth })).statusCode).toBe(201);
});
afterAll(async () => t.close());

describe('POST /v1/admin/erasures', () => {
  it('refuses a request without a reason, or with something that is not a number, and a key without admin', async () => {
    const erase = (payload: unknown, key = ADMIN_KEY) => t.app.inject({ method: 'POST', url: '/v1/admin/erasures', headers: { authorization: `Bearer ${key}` }, payload: payload as object });
    expect((await erase({ number: ERASED_NUMBER })).json()).toMatchObject({ error: { code: 'REQUEST.INVALID_BODY' } });
    expect((await erase({ number: '1*', reason: 'ticket 1' })).statusCode).toBe(400);
    expect((await erase({ number: ERASED_NUMBER, reason: 'ticket 1' }, 'test-read-key-0123456789')).statusCode).toBe(403);
  });

  it('erases a number everywhere; every chain verifies, online and offline; search by it finds nothing', async () => {
    const before = await get(`/v1/calls?from=${encodeURIComponent(ERASED_NUMBER)}&minPosition=${ingested}`);
    expect(before.json().data.map((l: { callId: string }) => l.callId)).toEqual(['CA-erase-me']);
    // Exports served before the erasure hold the number: the ledger cannot reach them, it records them.
    expect((await get(`/v1/export/calls?format=csv&from=${encodeURIComponent(ERASED_NUMBER)}`)).body).toContain(ERASED_NUMBER.slice(1));
    expect((await exportLines()).join('\n')).toContain(ERASED_NUMBER.slice(1));

    const res = await t.app.inject({
      method: 'POST', url: '/v1/admin/erasures', headers: { authorization: `Bearer ${ADMIN_KEY}` }, payload: { number: ERASED_NUMBER, reason: 'GDPR art. 17 request, ticket 4711' },
    });
    expect(res.statusCode, res.body).toBe(201);
    const erasure = res.json();
    expect(erasure).toMatchObject({ subject: 'number', streams: ['callLeg-freeclimb:CA-erase-me'], receipts: 3, notErasable: 0, position: expect.any(String) });
    expect(erasure.fields).toBeGreaterThanOrEqual(4);

    // The store: no byte of the number is left in any receipt or event.
    const digits = ERASED_NUMBER.slice(1);
    const left = await sql<{ n: string }>`
      SELECT (SELECT count(*) FROM webhook_receipts WHERE encode(body, 'escape') LIKE ${`%${digits}%`} OR query LIKE ${`%${digits}%`})
        + (SELECT count(*) FROM events WHERE data::text LIKE ${`%${digits}%`} OR metadata::text LIKE ${`%${digits}%`}) AS n`.execute(t.db.db);
    expect(Number(left.rows[0]!.n)).toBe(0);

    // Online verification: every chain, the signed checkpoint taken before the erasure included.
    const verify = (await get('/v1/audit/verify')).json();
    expect(verify).toMatchObject({ valid: true, broken: [], checkpoints: { problems: [] } });
    // And with a checkpoint taken after it, the offline verifier of an export passes on every chain.
    expect((await t.app.inject({ method: 'POST', url: '/v1/admin/checkpoints', headers: auth })).statusCode).toBe(201);
    const lines = await exportLines();
    expect(lines.join('\n')).not.toContain(digits);
    const offline = await verifyAuditExport(lines, { publicKey: publicPem });
    expect(offline).toMatchObject({ valid: true, broken: [], checkpoints: { checked: 2, signed: 2, problems: [] } });

    // Searching by the erased number finds nothing (exact, pattern, digits); the kept number is still found.
    const at = `minPosition=${erasure.position}`;
    for (const q of [`from=${encodeURIComponent(ERASED_NUMBER)}`, `from=${encodeURIComponent('*550147')}`, 'numberContains=550147', `to=${encodeURIComponent(ERASED_NUMBER)}`]) {
      const found = await get(`/v1/calls?${q}&${at}`);
      expect(found.statusCode, found.body).toBe(200);
      expect(found.json().data, q).toEqual([]);
    }
    const kept = (await get(`/v1/calls?from=${encodeURIComponent(KEPT_NUMBER)}&${at}`)).json();
    expect(kept.data.map((l: { callId: string; from: string }) => [l.callId, l.from])).toEqual([['CA-keep-me', KEPT_NUMBER]]);
    // The erased leg keeps its counts and status; its number reads as erased.
    const call = (await get(`/v1/calls/CA-erase-me?${at}`)).json();
    expect(call).toMatchObject({ from: '[erased]', to: TO, status: 'completed', talkDurationSec: 10 });

    // The events route: values and raw bodies show the marker, the chain is verified link by link.
    const events = (await get(`/v1/calls/CA-erase-me/events?${at}`)).json();
    expect(events.chain.valid).toBe(true);
    expect(events.data.every((e: { chainVerified: boolean }) => e.chainVerified)).toBe(true);
    const callEvents = events.data.filter((e: { type: string }) => e.type !== 'PersonalDataErased');
    expect(callEvents.every((e: { receipt: { body: string } }) => e.receipt.body === '[erased]')).toBe(true);
    expect(JSON.stringify(events)).not.toContain(digits);
    expect(events.data.at(-1)).toMatchObject({ type: 'PersonalDataErased', data: { erasureId: erasure.erasureId } });

    // The CSV export carries no trace of it either.
    const csv = await get('/v1/export/calls?format=csv');
    expect(csv.body).not.toContain(digits);
    expect(csv.body).toContain(KEPT_NUMBER);

    // The request is listed among the admin actions, by key name, with its reason and never the number.
    const actions = (await get('/v1/admin/actions')).json();
    const recorded = actions.data.find((a: { action: string }) => a.action === 'erasure');
    expect(recorded).toMatchObject({ keyName: 'root', action: 'erasure', details: { erasureId: erasure.erasureId, subject: 'number', hint: '47', reason: 'GDPR art. 17 request, ticket 4711' } });
    expect(JSON.stringify(actions)).not.toContain(digits);
    // Which exports were served before it (and may hold the value): by key and time, filter names but never values.
    const servedBefore = (action: string) =>
      actions.data.filter((a: { action: string; at: string }) => a.action === action && a.at < recorded.at).map((a: { keyName: string; details: unknown }) => [a.keyName, a.details]);
    expect(servedBefore('export.calls')).toEqual([['ops', { format: 'csv', masked: false, filters: ['from'] }]]);
    expect(servedBefore('export.audit')).toEqual([['ops', {}]]);
    const audits = (await get('/v1/admin/actions?action=export.audit')).json().data;
    expect(audits.map((a: { action: string }) => a.action)).toEqual(['export.audit', 'export.audit']);
  });

  it('a re-translation and a projection rebuild do not bring the number back', async () => {
    const stream = 'callLeg-freeclimb:CA-erase-me';
    const countOf = async () => Number((await sql<{ n: string }>`SELECT count(*) AS n FROM events WHERE stream_name = ${stream}`.execute(t.db.db)).rows[0]!.n);
    const before = await countOf();
    // A newer FreeClimb translator: every receipt is read again, the erased ones are left alone (no body to read).
    const providers = t.app.get(ProviderRegistry);
    const report = await retranslateStore(t.db.db, {
      versions: { ...TRANSLATOR_VERSIONS, freeclimb: TRANSLATOR_VERSIONS.freeclimb + 1 },
      translate: (d) => translateDelivery(providers.get(d.provider), d),
      log: () => undefined,
    });
    expect(report.providers.find((p) => p.provider === 'freeclimb')).toMatchObject({ scanned: expect.any(Number) });
    expect(await countOf()).toBe(before);

    const projector = await readyProjector(t);
    await projector.rebuild();
    const head = (await sql<{ p: string }>`SELECT max(global_position)::text AS p FROM events`.execute(t.db.db)).rows[0]!.p;
    const found = (await get(`/v1/calls?numberContains=550147&minPosition=${head}`)).json();
    expect(found.data).toEqual([]);
    expect((await get(`/v1/calls/CA-erase-me?minPosition=${head}`)).json()).toMatchObject({ from: '[erased]', status: 'completed' });
    expect((await get(`/v1/calls?from=${encodeURIComponent(KEPT_NUMBER)}&minPosition=${head}`)).json().data).toHaveLength(1);
    expect((await get('/v1/audit/verify')).json()).toMatchObject({ valid: true, broken: [] });
  });

  it('erases a whole call by its id: every value of its legs; the chains still verify', async () => {
    const res = await t.app.inject({
      method: 'POST', url: '/v1/admin/erasures', headers: { authorization: `Bearer ${ADMIN_KEY}` }, payload: { callId: 'CA-keep-me', reason: 'ticket 4712' },
    });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toMatchObject({ subject: 'call', streams: ['callLeg-freeclimb:CA-keep-me'], receipts: 3 });
    const at = `minPosition=${res.json().position}`;
    expect((await get(`/v1/calls/CA-keep-me?${at}`)).json()).toMatchObject({ from: '[erased]', to: '[erased]', status: 'completed' });
    expect((await get(`/v1/calls?from=${encodeURIComponent(KEPT_NUMBER)}&${at}`)).json().data).toEqual([]);
    expect((await get('/v1/audit/verify')).json()).toMatchObject({ valid: true, broken: [] });
    expect(await verifyAuditExport(await exportLines(), { publicKey: publicPem })).toMatchObject({ valid: true, broken: [] });
  });
});
