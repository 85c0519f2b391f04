import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDatabase } from '@lib/db';
import { EventStoreRepository, verifyAuditExport } from '@lib/event-store';
import { callLegsProjection, Projector } from '@lib/projections';
import { TRANSLATOR_VERSIONS } from '@lib/providers';
import { createTestDatabase, type TestDatabase } from '@lib/testing';
import { ProjectorLifecycle } from '../../apps/ledger/src/projections/projector.lifecycle.js';
import { oldStore } from '../support/old-store.js';
import { API_KEY, SECRETS, startTestApp, type TestApp } from '../support/test-app.js';

/**
 * Issue 11, "done when a full rebuild of a store filled with the old rules gives the corrected legs": the service
 * starts on a store that the translators before issue 11 filled (their real output over the corpus,
 * test/fixtures/retranslate/old-translations.json) and whose read model they built. At start it re-translates the
 * kept raw bodies, appends what changed, and rebuilds; the legs then show what today's translators read.
 */
const auth = { authorization: `Bearer ${API_KEY}` };
const AMD_LEG = 'CA1111aaaa2222bbbb3333cccc4444dddd';
let tdb: TestDatabase;
let t: TestApp;
const entries = oldStore(new Date('2026-11-30T10:00:00.000Z'));

const get = async (url: string) => {
  const res = await t.app.inject({ method: 'GET', url, headers: auth });
  return { status: res.statusCode, body: res.json() as Record<string, unknown> & { data: Record<string, unknown>[] } };
};
const eventCount = async () => (await sql<{ n: string }>`SELECT count(*)::text AS n FROM events`.execute(tdb.db)).rows[0]!.n;

beforeAll(async () => {
  tdb = await createTestDatabase();
  await new EventStoreRepository(tdb.db).appendBatch(entries.map((e) => e.record));
  // The read model the old translations gave, built by the projector role as the service builds it.
  const projectorPool = createDatabase(tdb.projectorUrl, 2);
  try {
    const old = new Projector(projectorPool.db, [callLegsProjection]);
    await old.init();
    await old.runUntilCaughtUp();
  } finally {
    await projectorPool.db.destroy();
  }
  const amd = await sql<{ answered_by: string | null }>`SELECT answered_by FROM call_legs WHERE call_id = ${AMD_LEG}`.execute(tdb.db);
  expect(amd.rows).toEqual([{ answered_by: null }]);
  t = await startTestApp(SECRETS, { db: tdb });
}, 120_000);
afterAll(async () => {
  await t?.close();
  await tdb?.drop();
});

describe('a store filled by the old translators, at the next start', () => {
  it('is re-translated and rebuilt into the corrected legs', async () => {
    // https://www.twilio.com/docs/voice/answering-machine-detection#webhook-parameters (AsyncAmdStatusCallback).
    await expect
      .poll(async () => (await get(`/v1/calls/${AMD_LEG}?provider=twilio`)).body.answeredBy, { timeout: 30_000, interval: 100 })
      .toBe('machine');
    await expect
      .poll(async () => (await get('/v1/admin/projections')).body, { timeout: 30_000, interval: 100 })
      .toMatchObject({ data: [expect.objectContaining({ name: 'call_legs', state: 'running', generation: 2 })] });

    const leg = async (provider: string, callId: string) => (await get(`/v1/calls/${encodeURIComponent(callId)}?provider=${provider}`)).body;
    expect(await leg('twilio', AMD_LEG)).toMatchObject({ answeredBy: 'machine', answeredByDetail: 'machine_end_beep', status: 'in-progress' });
    // Each fixture's sidecar says what its legs show once read by today's translators.
    const checked = ['twilio/conference-participant-join', 'twilio/status-failed-error-code', 'twilio/dial-action-caller-hung-up', 'twilio/voice-request-sync-amd-human',
      'jambonz/action-hook-in-progress', 'jambonz/amd-hook-rest-call-machine', 'restcomm/dial-action-busy-486', 'twilio/enqueue-action-bridged'];
    for (const name of checked) {
      const e = entries.find((x) => `${x.provider}/${x.fixture}` === name)!;
      for (const [callId, expected] of Object.entries(e.expect.legs)) expect(await leg(e.provider, callId), `${name} ${callId}`).toMatchObject(expected);
    }

    const verify = await get('/v1/audit/verify');
    expect(verify.status).toBe(200);
    expect(verify.body).toMatchObject({ valid: true });
    // The offline verifier (npm run verify) over the audit export, with the new events checkpointed.
    expect((await t.app.inject({ method: 'POST', url: '/v1/admin/checkpoints', headers: auth })).statusCode).toBeLessThan(300);
    const exported = await t.app.inject({ method: 'GET', url: '/v1/audit/export', headers: auth });
    expect(exported.statusCode).toBe(200);
    const offline = await verifyAuditExport(exported.body.trimEnd().split('\n'));
    expect(offline).toMatchObject({ valid: true, broken: [], checkpoints: { problems: [] } });
    expect(offline.eventsChecked).toBe(Number(await eventCount()));
  });

  it("lists the new translation on the leg's events and marks the one it replaced", async () => {
    const { status, body } = await get(`/v1/calls/${AMD_LEG}/events?provider=twilio`);
    expect(status).toBe(200);
    const rows = body.data as { type: string; receipt: { id: string }; translation: { version: number; supersededBy: { version: number } | null } }[];
    const old = rows.find((r) => r.type === 'UnrecognizedWebhook')!;
    const current = rows.find((r) => r.type === 'MachineDetected')!;
    expect(old.translation).toMatchObject({ version: 0, supersededBy: { version: TRANSLATOR_VERSIONS.twilio } });
    expect(current.translation).toEqual({ version: TRANSLATOR_VERSIONS.twilio, supersededBy: null });
    expect(current.receipt.id).toBe(old.receipt.id);
    expect((body as unknown as { chain: { valid: boolean } }).chain.valid).toBe(true);
  });

  it('appends nothing at the following start', async () => {
    const before = await eventCount();
    await t.close();
    t = await startTestApp(SECRETS, { db: tdb });
    await t.app.get(ProjectorLifecycle).started;
    const progress = await sql<{ provider: string; version: number; done: boolean }>`SELECT provider, version, done FROM translation_progress ORDER BY provider`.execute(tdb.db);
    expect(progress.rows).toEqual(Object.entries(TRANSLATOR_VERSIONS).sort().map(([provider, version]) => ({ provider, version, done: true })));
    expect(await eventCount()).toBe(before);
  });
});
