import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Database } from '@lib/db';
import { Projector } from '@lib/projections';
import { API_KEY, SECRETS, readyProjector, startTestApp, type TestApp } from '../support/test-app.js';
import { jambonzRequest } from '../support/signing.js';

/**
 * The whole app as the service runs it: requests on the ledger_app role, the in-process projector on
 * ledger_projector (every e2e test runs this way; this one checks that it does, and that it is enough).
 */
let t: TestApp;
beforeAll(async () => {
  t = await startTestApp(SECRETS);
});
afterAll(async () => t.close());

describe('the app under least-privileged roles', () => {
  it('serves ingest, projections and queries as ledger_app and ledger_projector, which cannot touch the store directly', async () => {
    const appDb = t.app.get(Database);
    expect((await sql<{ u: string }>`SELECT current_user AS u`.execute(appDb)).rows[0]!.u).toBe('ledger_app');
    const projector = await readyProjector(t);
    expect(projector).toBeInstanceOf(Projector);

    const callSid = 'b2c3d4e5-0000-4000-8000-00000000r01e';
    const body = JSON.stringify({ call_sid: callSid, direction: 'inbound', from: '+14155550123', to: '+16175550142', call_status: 'in-progress', sip_status: 200, account_sid: 'acc-roles' });
    const r = jambonzRequest(body);
    const res = await t.app.inject({ method: 'POST', url: r.url, headers: r.headers, payload: r.payload });
    expect(res.statusCode).toBe(200);
    const position = res.json<{ position: string }>().position;

    const call = await t.app.inject({ method: 'GET', url: `/v1/calls/${callSid}?minPosition=${position}`, headers: { authorization: `Bearer ${API_KEY}` } });
    expect(call.statusCode).toBe(200);
    expect(call.json<{ callId: string }>().callId).toBe(callSid);

    const denied = await sql`DELETE FROM webhook_receipts`.execute(appDb).then(() => null, (e: { code?: string }) => e.code);
    expect(denied).toBe('42501');
    const owner = await sql<{ owner: string }>`SELECT tableowner AS owner FROM pg_tables WHERE tablename = 'call_legs_g1'`.execute(t.db.db);
    expect(owner.rows[0]!.owner).toBe('ledger_projector');
  });
});
