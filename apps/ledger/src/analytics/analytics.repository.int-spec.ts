import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventStoreRepository, type WebhookRecord } from '@lib/event-store';
import type { KpiTotals, Provider, TranslatedEvent } from '@lib/ledger';
import { callLegsProjection, Projector } from '@lib/projections';
import { createTestDatabase, type TestDatabase } from '@lib/testing';
import type { CallFilters } from '../calls/calls.repository.js';
import type { GroupBy } from './analytics.dto.js';
import { AnalyticsRepository } from './analytics.repository.js';

/**
 * The daily rollup against the hourly rollups and the legs: whichever source answers a summary, the figures are the
 * same, on random legs spread over days (some with no start) and random windows (whole days, whole hours, minutes,
 * open ends), live and after a rebuild.
 */
let tdb: TestDatabase;
let repo: AnalyticsRepository;
let projector: Projector;

const HOUR = 3_600_000;
const DAY = 24 * HOUR;
const BASE = Date.UTC(2026, 5, 1);
const SPAN_DAYS = 9;
const PROVIDERS: Provider[] = ['freeclimb', 'jambonz', 'twilio', 'restcomm'];

interface Leg {
  provider: Provider;
  startMs: number | null;
  ringSec: number;
  talkSec: number;
  outcome: 'completed' | 'busy' | 'no-answer' | 'failed' | 'canceled' | null;
  child: boolean;
}

const legArb: fc.Arbitrary<Leg> = fc.record({
  provider: fc.constantFrom(...PROVIDERS),
  startMs: fc.option(fc.integer({ min: 0, max: SPAN_DAYS * DAY - 1 }).map((ms) => BASE + ms), { freq: 12 }),
  ringSec: fc.integer({ min: 0, max: 40 }),
  // Up to 2 h, so that talk spreads over the histogram's buckets, the last one included.
  talkSec: fc.integer({ min: 0, max: 7_200 }),
  outcome: fc.option(fc.constantFrom('completed', 'completed', 'completed', 'busy', 'no-answer', 'failed', 'canceled'), { freq: 8 }),
  child: fc.boolean(),
}) as fc.Arbitrary<Leg>;

const recordsOf = (legs: Leg[]): WebhookRecord[] =>
  legs.map((l, i) => {
    const callId = `CA${i.toString(36)}`;
    const at = (ms: number | null) => (ms === null ? null : new Date(ms).toISOString());
    const base = { legId: callId, accountId: `AC${i % 3}`, parentLegId: l.child && i > 0 ? `CA${(i - 1).toString(36)}` : null, providerSeq: null, party: null };
    const end = l.startMs === null ? null : l.startMs + (l.ringSec + l.talkSec) * 1000;
    const events: TranslatedEvent[] = [
      { ...base, type: 'CallInitiated', occurredAt: at(l.startMs), data: { direction: l.child ? 'outbound-dial' : 'inbound', from: '+13125550100', to: '+18475550100' } },
    ];
    if (l.outcome === 'completed') events.push({ ...base, type: 'CallAnswered', occurredAt: at(l.startMs === null ? null : l.startMs + l.ringSec * 1000), data: {} });
    if (l.outcome) {
      events.push({
        ...base, type: 'CallCompleted', occurredAt: at(end),
        data: l.outcome === 'completed' ? { outcome: 'completed', durationSec: l.talkSec, endReason: 'hangup' } : { outcome: l.outcome, durationSec: 0 },
      });
    }
    const body = Buffer.from(JSON.stringify({ i, l }));
    return {
      receipt: {
        provider: l.provider, body, bodySha256: createHash('sha256').update(body).digest(), contentType: 'application/json', path: '', query: '',
        headers: {}, remoteAddr: null, receivedAt: new Date(BASE + SPAN_DAYS * DAY), source: 'import', signatureStatus: 'not-checked', signatureTimestamp: null,
      },
      events,
    };
  });

beforeAll(async () => {
  tdb = await createTestDatabase(4);
  projector = new Projector(tdb.db, [callLegsProjection]);
  await projector.init();
  repo = new AnalyticsRepository(tdb.db);
  const legs = fc.sample(legArb, { numRuns: 600, seed: 1402 });
  const store = new EventStoreRepository(tdb.db);
  // In several batches, so that the live loop adds and takes back rollup deltas across batches.
  const records = recordsOf(legs);
  for (let i = 0; i < records.length; i += 150) {
    await store.appendBatch(records.slice(i, i + 150));
    await projector.runUntilCaughtUp();
  }
});
afterAll(async () => tdb.drop());

/** A bound: a whole day, a whole hour, any millisecond, or none. */
const boundArb = fc.option(
  fc.oneof(
    fc.integer({ min: -1, max: SPAN_DAYS + 1 }).map((d) => BASE + d * DAY),
    fc.integer({ min: -2, max: SPAN_DAYS * 24 + 2 }).map((h) => BASE + h * HOUR),
    fc.integer({ min: -DAY, max: (SPAN_DAYS + 1) * DAY }).map((ms) => BASE + ms),
  ),
  { freq: 6 },
);
const queryArb = fc.record({
  since: boundArb,
  until: boundArb,
  groupBy: fc.constantFrom<GroupBy | null>(null, 'day', 'hour', 'provider', 'status'),
  provider: fc.option(fc.constantFrom(...PROVIDERS), { freq: 3 }),
  status: fc.option(fc.constantFrom('completed' as const, 'busy' as const), { freq: 4 }),
});

const plain = (m: Map<string | null, KpiTotals>) => Object.fromEntries([...m.entries()].sort(([a], [b]) => String(a).localeCompare(String(b))));

const sameAnswers = async () =>
  fc.assert(
    fc.asyncProperty(queryArb, async (q) => {
      const filters: CallFilters = {
        ...(q.since !== null ? { since: new Date(q.since).toISOString() } : {}),
        ...(q.until !== null ? { until: new Date(q.until).toISOString() } : {}),
        ...(q.provider ? { provider: q.provider } : {}),
        ...(q.status ? { status: q.status } : {}),
      };
      const daily = plain(await repo.totalsByGroup(filters, q.groupBy));
      const hourly = plain(await repo.totalsByGroup(filters, q.groupBy, { daily: false }));
      const legs = plain(await repo.totalsByGroup(filters, q.groupBy, { rollups: false }));
      expect(daily).toEqual(hourly);
      expect(daily).toEqual(legs);
    }),
    { numRuns: 150, seed: 14 },
  );

/** Each daily cell is the sum of its day's hourly cells (the null-start cell included), histogram and extremes too. */
const dailyIsHourlySummed = async () => {
  const byDay = await sql<Record<string, unknown>>`
    SELECT date_trunc('day', hour, 'UTC') AS day, provider, status, sum(legs)::text AS legs, sum(talk_ms)::text AS talk_ms, sum(ring_ms)::text AS ring_ms,
      sum(ring_n)::text AS ring_n, sum(machine)::text AS machine, min(talk_min_ms)::text AS mn, max(talk_max_ms)::text AS mx
    FROM call_provider_hourly GROUP BY 1, 2, 3 ORDER BY 1 NULLS FIRST, 2, 3`.execute(tdb.db);
  const daily = await sql<Record<string, unknown>>`
    SELECT day, provider, status, legs::text, talk_ms::text, ring_ms::text, ring_n::text, machine::text, talk_min_ms::text AS mn, talk_max_ms::text AS mx
    FROM call_provider_daily ORDER BY 1 NULLS FIRST, 2, 3`.execute(tdb.db);
  expect(daily.rows.length).toBeGreaterThan(SPAN_DAYS * 4);
  expect(daily.rows).toEqual(byDay.rows);
  const histHourly = await sql`
    SELECT date_trunc('day', h.hour, 'UTC') AS day, h.provider, h.status, u.i, sum(u.v)::text AS n
    FROM call_provider_hourly h, unnest(h.talk_hist) WITH ORDINALITY AS u(v, i) GROUP BY 1, 2, 3, 4 ORDER BY 1 NULLS FIRST, 2, 3, 4`.execute(tdb.db);
  const histDaily = await sql`
    SELECT h.day, h.provider, h.status, u.i, sum(u.v)::text AS n
    FROM call_provider_daily h, unnest(h.talk_hist) WITH ORDINALITY AS u(v, i) GROUP BY 1, 2, 3, 4 ORDER BY 1 NULLS FIRST, 2, 3, 4`.execute(tdb.db);
  expect(histDaily.rows).toEqual(histHourly.rows);
};

describe('analytics summary from the daily rollup', () => {
  it('keeps each daily cell equal to its hours summed, live and rebuilt', async () => {
    await dailyIsHourlySummed();
    await projector.rebuild('call_legs');
    await dailyIsHourlySummed();
  });

  it('answers as the hourly rollups and the legs do, for random windows, groups and filters, live and rebuilt', async () => {
    await sameAnswers();
    await projector.rebuild('call_legs');
    await sameAnswers();
  });
});
