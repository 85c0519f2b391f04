import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callLegsProjection, type Projector } from '@lib/projections';
import { API_KEY, readyProjector, SECRETS, startTestApp, type TestApp } from '../support/test-app.js';
import { freeclimbRequest, restcommRequest, type SignedRequest } from '../support/signing.js';

let t: TestApp;
let projector: Projector;
beforeAll(async () => {
  t = await startTestApp(SECRETS);
  projector = await readyProjector(t);
});
afterAll(async () => t.close());

const post = async (r: SignedRequest) => {
  const res = await t.app.inject({ method: 'POST', url: r.url, headers: r.headers, payload: r.payload });
  expect(res.statusCode).toBe(200);
  return res.json() as { position: string };
};
const auth = { authorization: `Bearer ${API_KEY}` };

const ACC = 'ACe511f7e60a7aaec1435ac251c24f6bd698d8dd14';
const P = 'CA2cfc4d1f2e9feccb2ec7e2fe68f903d31faca038';
const C = 'CAb53f471b12555eb49d7c94a2ec8543dcc8ae8597';
const fc = (o: Record<string, unknown>) => JSON.stringify({ accountId: ACC, conferenceId: null, queueId: null, ...o });

describe('projections in the running service', () => {
  it('projects a FreeClimb OutDial tree delivered child-first, healing the root when the parent arrives', async () => {
    // The child reports before the parent's link and before the parent itself.
    await post(freeclimbRequest(fc({ requestType: 'outDialConnect', callId: C, parentCallId: P, from: '+13125550100', to: '+18475550163', callStatus: 'inProgress', direction: 'outboundDial' })));
    await post(freeclimbRequest(fc({ requestType: 'callStatus', callId: C, parentCallId: P, from: '+13125550100', to: '+18475550163', callStatus: 'completed', callEndedReason: 'farEndHangup', callDuration: '74', direction: 'outboundDial' })));
    await post(freeclimbRequest(fc({ requestType: 'inboundCall', callId: P, parentCallId: null, from: '+13125550147', to: '+13125550100', callStatus: 'ringing', direction: 'inbound' })));
    const last = await post(freeclimbRequest(fc({ requestType: 'outDialStart', callId: P, dialCallId: C, parentCallId: null, from: '+13125550147', to: '+13125550100', callStatus: 'inProgress', direction: 'inbound' })));
    expect(await projector.waitFor(last.position, 5_000)).toBe(true);
    const rows = await sql<{ call_id: string; parent_call_id: string | null; root_call_id: string; depth: number; status: string; talk_duration_sec: number | null; talk_duration_source: string | null; direction: string | null }>`
      SELECT call_id, parent_call_id, root_call_id, depth, status, talk_duration_sec, talk_duration_source, direction FROM call_legs WHERE provider = 'freeclimb' ORDER BY depth`.execute(t.db.db);
    expect(rows.rows).toEqual([
      expect.objectContaining({ call_id: P, parent_call_id: null, root_call_id: P, depth: 0, direction: 'inbound' }),
      expect.objectContaining({ call_id: C, parent_call_id: P, root_call_id: P, depth: 1, status: 'completed', talk_duration_sec: 74, talk_duration_source: 'provider', direction: 'outbound-dial' }),
    ]);
  });

  it("resolves a Restcomm child's ambiguous end from the parent's Dial action", async () => {
    const parent = 'IDe63fbd64e6e52e61d091a29ebda913cd-CA5a6782f238f8f435013bdb74e077ea2e';
    const child = 'IDe63fbd64e6e52e61d091a29ebda913cd-CAa70218d4ad6c1afddfe70660bf5778c9';
    const progress = (status: string, seq: number, extra = '') =>
      `InstanceId=IDe63f&AccountSid=AC3400&CallSid=${child}&From=12125550100&To=13105550142&Direction=outbound-dial&CallerName=12125550100&ForwardedFrom` +
      `&ParentCallSid=${parent}&CallStatus=${status}${extra}&Timestamp=Mon%2C+05+Jan+2026+14%3A05%3A5${seq}+UTC&CallbackSource=call-progress-events&SequenceNumber=${seq}`;
    await post(restcommRequest(progress('initiated', 0)));
    await post(restcommRequest(progress('ringing', 1)));
    await post(restcommRequest(progress('completed', 3, '&CallDuration=0')));
    const last = await post(
      restcommRequest(
        `CallSid=${parent}&AccountSid=AC3400&From=%2B12125550177&To=%2B12125550100&CallStatus=in-progress&Direction=inbound&ApiVersion=2012-04-24` +
          `&DialCallSid=${child}&DialCallStatus=busy&DialCallDuration=0&DialRingDuration=6`,
        '/dial-action',
      ),
    );
    expect(await projector.waitFor(last.position, 5_000)).toBe(true);
    const row = await sql<{ status: string; ring_duration_sec: number | null; ring_duration_source: string | null; final: boolean }>`
      SELECT status, ring_duration_sec, ring_duration_source, final FROM call_legs WHERE provider = 'restcomm' AND call_id = ${child}`.execute(t.db.db);
    expect(row.rows[0]).toMatchObject({ status: 'busy', ring_duration_sec: 6, ring_duration_source: 'provider' });
  });

  it('shows projection status and rebuilds through the admin API', async () => {
    const status = await t.app.inject({ method: 'GET', url: '/v1/admin/projections', headers: auth });
    expect(status.statusCode).toBe(200);
    const [cl] = status.json().data;
    expect(cl).toMatchObject({ name: 'call_legs', version: callLegsProjection.version, state: expect.stringMatching(/running|rebuilding/), lagEvents: expect.any(Number) });
    const before = await sql`SELECT * FROM call_legs ORDER BY provider, call_id`.execute(t.db.db);
    const res = await t.app.inject({ method: 'POST', url: '/v1/admin/projections/rebuild', headers: { ...auth, 'content-type': 'application/json' }, payload: '{"name":"call_legs"}' });
    expect(res.statusCode).toBe(202);
    await expect.poll(async () => (await projector.status())[0]!.generation, { timeout: 10_000 }).toBe(2);
    const after = await sql`SELECT * FROM call_legs ORDER BY provider, call_id`.execute(t.db.db);
    expect(after.rows).toEqual(before.rows);
    const unknown = await t.app.inject({ method: 'POST', url: '/v1/admin/projections/rebuild', headers: { ...auth, 'content-type': 'application/json' }, payload: '{"name":"nope"}' });
    expect(unknown.statusCode).toBe(404);
    const noKey = await t.app.inject({ method: 'GET', url: '/v1/admin/projections' });
    expect(noKey.statusCode).toBe(401);
  });
});

describe('read-your-writes (minPosition)', () => {
  it('waits for the position of a receipt, refuses a malformed one, and answers 503 for one never reached', async () => {
    const r = await post(freeclimbRequest(fc({ requestType: 'inboundCall', callId: 'CA-ryw-1', parentCallId: null, from: '+1', to: '+2', callStatus: 'ringing', direction: 'inbound' })));
    const ok = await t.app.inject({ method: 'GET', url: `/v1/admin/projections?minPosition=${r.position}`, headers: auth });
    expect(ok.statusCode).toBe(200);
    expect(await projector.hasPassed(r.position)).toBe(true);
    const bad = await t.app.inject({ method: 'GET', url: '/v1/admin/projections?minPosition=abc', headers: auth });
    expect(bad.statusCode).toBe(400);
    expect(bad.json().error.message).toContain('minPosition');
    // Past int8: PostgreSQL cannot cast it, which was a 500.
    for (const huge of ['9223372036854775808', '9999999999999999999', '99999999999999999999']) {
      for (const url of [`/v1/admin/projections?minPosition=${huge}`, `/v1/calls?minPosition=${huge}`, `/v1/analytics/summary?minPosition=${huge}`]) {
        const res = await t.app.inject({ method: 'GET', url, headers: auth });
        expect(res.statusCode, url).toBe(400);
        expect(res.json().error.code).toBe('QUERY.INVALID_PARAMETER');
        expect(res.json().error.message).toContain('minPosition');
      }
    }
    // A position beyond the head can only be reached by a later append, so this waits out the timeout.
    const future = BigInt(r.position) + 1_000_000n;
    const late = await t.app.inject({ method: 'GET', url: `/v1/admin/projections?minPosition=${future}`, headers: auth });
    expect(late.statusCode).toBe(503);
    expect(late.headers['retry-after']).toBe('1');
  });
});
