import { createHash } from 'node:crypto';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { EventStoreRepository, type WebhookRecord } from '@lib/event-store';
import type { Provider, TranslatedEvent } from '@lib/ledger';
import { createTestDatabase } from '@lib/testing';
import { callLegsProjection } from './call-legs.projection.js';
import { Projector } from './projector.js';

/**
 * Issue 11: a store filled before projection version 4 holds the events the old translators wrote and a read model
 * built by the old rules. The dialect rules live in the pure projection, so the version bump's rebuild at the next
 * start, over the very same events, must give the corrected legs.
 */
const record = (provider: Provider, n: number, events: Omit<TranslatedEvent, 'accountId' | 'providerSeq' | 'party'>[], receivedAt: string): WebhookRecord => {
  const body = Buffer.from(`old-store-${provider}-${n}`);
  return {
    receipt: {
      provider, body, bodySha256: createHash('sha256').update(body).digest(), contentType: 'application/x-www-form-urlencoded', path: '', query: '',
      headers: {}, remoteAddr: null, receivedAt: new Date(receivedAt), source: 'import', signatureStatus: 'not-checked', signatureTimestamp: null,
    },
    events: events.map((e) => ({ accountId: 'AC1', providerSeq: null, party: null, ...e }) as TranslatedEvent),
  };
};

// Exactly what the pre-v4 translators stored for these deliveries.
const OLD_STORE: WebhookRecord[] = [
  // Twilio's only (final) callback, CallDuration=0: the old RCML translator applied Restcomm's rule.
  record('twilio', 1, [{ type: 'CallCompleted', legId: 'CA-tw-final', parentLegId: null, occurredAt: '2018-03-05T14:03:10.000Z', data: { outcome: 'unanswered-unknown', durationSec: 0 } }], '2026-11-30T10:00:00.000Z'),
  // jambonz: the caller answered (200), its dial got a 486 from the dialled leg.
  record('jambonz', 2, [{ type: 'CallInitiated', legId: 'P', parentLegId: null, occurredAt: null, data: { direction: 'inbound', from: '+1', to: '+2' } }], '2026-11-30T10:00:00.000Z'),
  record('jambonz', 3, [{ type: 'CallAnswered', legId: 'P', parentLegId: null, occurredAt: null, data: { sipStatus: 200 } }], '2026-11-30T10:00:01.000Z'),
  record('jambonz', 4, [{ type: 'CallInitiated', legId: 'C', parentLegId: 'P', occurredAt: null, data: { direction: 'outbound-dial', from: '+1', to: '+3' } }], '2026-11-30T10:00:02.000Z'),
  record('jambonz', 5, [{ type: 'CallCompleted', legId: 'C', parentLegId: 'P', occurredAt: null, data: { outcome: 'busy', sipStatus: 486 } }], '2026-11-30T10:00:04.000Z'),
  record(
    'jambonz',
    6,
    [
      { type: 'DialCompleted', legId: 'P', parentLegId: null, occurredAt: null, data: { childLegId: 'C', outcome: 'busy', sipStatus: 486 } },
      { type: 'ChildLegDialed', legId: 'P', parentLegId: null, occurredAt: null, data: { childLegId: 'C', parentLegId: 'P' } },
    ],
    '2026-11-30T10:00:05.000Z',
  ),
  record('jambonz', 7, [{ type: 'CallCompleted', legId: 'P', parentLegId: null, occurredAt: null, data: { outcome: 'completed', durationSec: 30, terminatedBy: 'caller' } }], '2026-11-30T10:00:35.000Z'),
];

describe('projection version 4 over a store filled by the old rules', () => {
  it('rebuilds at start into the corrected legs, from the same stored events', async () => {
    const tdb = await createTestDatabase(4);
    try {
      const first = new Projector(tdb.db, [callLegsProjection]);
      await first.init();
      await new EventStoreRepository(tdb.db).appendBatch(OLD_STORE);
      await first.runUntilCaughtUp();
      // The read model as version 3 left it: the rows its rules gave for these events.
      await sql`UPDATE call_legs_g1 SET status = 'failed', talk_duration_sec = 0, talk_duration_source = 'derived', final = true, started_at = '2018-03-05T14:03:10Z',
        started_at_source = NULL, hangup_by = NULL WHERE call_id = 'CA-tw-final'`.execute(tdb.db);
      await sql`UPDATE call_legs_g1 SET sip_status = 486, end_reason = 'caller', hangup_by = NULL WHERE call_id = 'P'`.execute(tdb.db);
      await sql`UPDATE projection_checkpoints SET version = 3 WHERE name = 'call_legs'`.execute(tdb.db);
      const stale = await sql<{ status: string }>`SELECT status FROM call_legs WHERE call_id = 'CA-tw-final'`.execute(tdb.db);
      expect(stale.rows[0]!.status).toBe('failed');

      // The next start: a projector of this version finds the store at version 3 and rebuilds side by side.
      const restarted = new Projector(tdb.db, [callLegsProjection]);
      await restarted.init();
      await expect
        .poll(async () => (await sql<{ version: number; generation: number }>`SELECT version, generation FROM projection_checkpoints WHERE name = 'call_legs'`.execute(tdb.db)).rows[0], { timeout: 20_000 })
        .toEqual({ version: callLegsProjection.version, generation: 2 });

      const legs = await sql<Record<string, unknown>>`
        SELECT provider, call_id, status, talk_duration_sec, talk_duration_source, final, started_at, started_at_source, ended_at_source,
          sip_status, end_reason, hangup_by
        FROM call_legs ORDER BY provider, call_id`.execute(tdb.db);
      const byId = Object.fromEntries(legs.rows.map((r) => [r.call_id, r]));
      // https://www.twilio.com/docs/voice/api/call-resource#call-status-values: Twilio's completed is answered.
      expect(byId['CA-tw-final']).toMatchObject({
        status: 'completed', talk_duration_sec: 0, talk_duration_source: 'provider', final: true,
        started_at: new Date('2018-03-05T14:03:10Z'), ended_at_source: 'provider',
      });
      // The 486 was the dialled leg's (jambonz-feature-server lib/tasks/dial.js dial_sip_status): it stays on C.
      expect(byId.P).toMatchObject({ sip_status: 200, end_reason: null, hangup_by: 'caller', status: 'completed' });
      expect(byId.C).toMatchObject({ sip_status: 486, status: 'busy' });
    } finally {
      await tdb.drop();
    }
  });
});

describe('the live loop during a version bump', () => {
  it('leaves a generation of another version (lacking the daily rollup) to its rebuild instead of failing on it', async () => {
    const tdb = await createTestDatabase(4);
    try {
      const projector = new Projector(tdb.db, [callLegsProjection]);
      await projector.init();
      // Generation 1 as version 4 made it: no daily rollup (projection version 5 added it).
      await sql`DROP TABLE call_provider_daily_g1 CASCADE`.execute(tdb.db);
      await sql`UPDATE projection_checkpoints SET version = 4 WHERE name = 'call_legs'`.execute(tdb.db);
      await new EventStoreRepository(tdb.db).appendBatch(OLD_STORE);
      // Before: the batch wrote the daily cells into a table generation 1 does not have, and the projection failed.
      expect(await projector.runOnce(callLegsProjection)).toBe(0);
      const cp = await sql<{ last_error: string | null; last_position: string }>`
        SELECT last_error, last_position::text FROM projection_checkpoints WHERE name = 'call_legs'`.execute(tdb.db);
      expect(cp.rows[0]).toEqual({ last_error: null, last_position: '0' });
    } finally {
      await tdb.drop();
    }
  });
});
