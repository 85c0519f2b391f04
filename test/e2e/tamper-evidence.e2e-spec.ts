import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { API_KEY, SECRETS, startTestApp, type TestApp } from '../support/test-app.js';
import { freeclimbRequest, type SignedRequest } from '../support/signing.js';

/**
 * Tamper evidence: the database owner can switch the immutability triggers off, but whatever they change in
 * the store, /v1/audit/verify names the stream and the position of the first link that no longer holds.
 */
let t: TestApp;
beforeAll(async () => {
  t = await startTestApp(SECRETS);
});
afterAll(async () => t.close());

const ACC = 'ACe511f7e60a7aaec1435ac251c24f6bd698d8dd14';
const leg = (callId: string, status: string, extra: Record<string, unknown> = {}) =>
  JSON.stringify({ accountId: ACC, callId, callStatus: status, direction: 'inbound', from: '+13125550147', to: '+13125550100', parentCallId: null, conferenceId: null, queueId: null, requestType: 'callStatus', ...extra });
const post = async (r: SignedRequest) => {
  const res = await t.app.inject({ method: 'POST', url: r.url, headers: r.headers, payload: r.payload });
  expect(res.statusCode).toBe(200);
};
const verify = async () => (await t.app.inject({ method: 'GET', url: '/v1/audit/verify', headers: { authorization: `Bearer ${API_KEY}` } })).json();
const asOwner = async (statement: ReturnType<typeof sql>, table = 'events') => {
  await sql`ALTER TABLE ${sql.table(table)} DISABLE TRIGGER USER`.execute(t.db.db);
  try {
    await statement.execute(t.db.db);
  } finally {
    await sql`ALTER TABLE ${sql.table(table)} ENABLE TRIGGER USER`.execute(t.db.db);
  }
};
const eventsOf = async (callId: string) =>
  (await sql<{ position: string; version: number; receipt_id: string }>`
    SELECT global_position::text AS position, stream_version AS version, receipt_id::text FROM events
    WHERE stream_name = ${`callLeg-freeclimb:${callId}`} ORDER BY stream_version`.execute(t.db.db)).rows;

describe('GET /v1/audit/verify after tampering as the database owner', () => {
  beforeAll(async () => {
    for (const callId of ['CA-tamper-1', 'CA-tamper-2', 'CA-tamper-3', 'CA-tamper-ok']) {
      await post(freeclimbRequest(leg(callId, 'ringing', { requestType: 'inboundCall' }), '/voice'));
      await post(freeclimbRequest(leg(callId, 'inProgress'), '/status'));
      await post(freeclimbRequest(leg(callId, 'completed', { callDuration: 10 }), '/status'));
    }
    expect(await verify()).toMatchObject({ valid: true, broken: [] });
  });

  it('the triggers refuse the change unless the owner disables them', async () => {
    await expect(sql`UPDATE events SET data = '{}' WHERE stream_name = 'callLeg-freeclimb:CA-tamper-1'`.execute(t.db.db)).rejects.toThrow(/append-only/);
    await expect(sql`DELETE FROM webhook_receipts`.execute(t.db.db)).rejects.toThrow(/append-only/);
  });

  it('names the exact stream and position of a changed event, a deleted event and an edited raw body', async () => {
    const one = await eventsOf('CA-tamper-1');
    const two = await eventsOf('CA-tamper-2');
    const three = await eventsOf('CA-tamper-3');
    expect(one.length).toBeGreaterThanOrEqual(3);

    // A changed event in the middle of a stream: the link at that position no longer hashes.
    const changed = one[1]!;
    await asOwner(sql`UPDATE events SET data = jsonb_set(data, '{changed}', 'true') WHERE global_position = ${changed.position}::bigint`);
    // A deleted event: the next one sits at a version that no longer follows.
    const deleted = two[1]!;
    await asOwner(sql`DELETE FROM events WHERE global_position = ${deleted.position}::bigint`);
    // An edited raw webhook body: the event that cites it no longer matches the recorded sha256.
    const cited = three[0]!;
    await asOwner(sql`UPDATE webhook_receipts SET body = convert_to(replace(convert_from(body, 'UTF8'), 'ringing', 'busy'), 'UTF8') WHERE id = ${cited.receipt_id}::bigint`, 'webhook_receipts');

    const report = await verify();
    expect(report.valid).toBe(false);
    const broken = [...report.broken].sort((a: { callId: string }, b: { callId: string }) => a.callId.localeCompare(b.callId));
    expect(broken).toEqual([
      { callId: 'CA-tamper-1', provider: 'freeclimb', streamName: 'callLeg-freeclimb:CA-tamper-1', position: changed.position, reason: 'event content does not match its hash' },
      { callId: 'CA-tamper-2', provider: 'freeclimb', streamName: 'callLeg-freeclimb:CA-tamper-2', position: two[2]!.position, reason: expect.stringContaining('stream version 3 where 2 was expected') },
      { callId: 'CA-tamper-3', provider: 'freeclimb', streamName: 'callLeg-freeclimb:CA-tamper-3', position: cited.position, reason: 'raw webhook body no longer matches its recorded sha256' },
    ]);
    // The untouched stream still verifies on its own.
    const ok = (await t.app.inject({ method: 'GET', url: '/v1/audit/verify?callId=CA-tamper-ok', headers: { authorization: `Bearer ${API_KEY}` } })).json();
    expect(ok).toMatchObject({ streamsChecked: 1, valid: true, broken: [] });

    // The audit trail marks each event: links before the break verify, the break and everything after it do not.
    const head = (await sql<{ p: string }>`SELECT max(global_position)::text AS p FROM events`.execute(t.db.db)).rows[0]!.p;
    const trail = (await t.app.inject({ method: 'GET', url: `/v1/calls/CA-tamper-1/events?minPosition=${head}`, headers: { authorization: `Bearer ${API_KEY}` } })).json();
    expect(trail.chain.valid).toBe(false);
    expect(trail.data.map((e: { position: string; chainVerified: boolean }) => [e.position, e.chainVerified])).toEqual(
      one.map((e, i) => [e.position, i < 1]),
    );
    const untouched = (await t.app.inject({ method: 'GET', url: `/v1/calls/CA-tamper-ok/events?minPosition=${head}`, headers: { authorization: `Bearer ${API_KEY}` } })).json();
    expect(untouched.data.every((e: { chainVerified: boolean }) => e.chainVerified)).toBe(true);
  });
});
