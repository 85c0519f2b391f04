import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeKpis, type KpiLeg } from '@lib/ledger';
import { importLine, simulate } from '@lib/simulator';
import { API_KEY, readyProjector, SECRETS, startTestApp, type TestApp } from '../support/test-app.js';

/**
 * The analytics against the legs they summarise: whatever mix of hourly rollups and raw legs answers a request,
 * the figures must equal the KPI definition (computeKpis) applied to the legs that GET /v1/calls lists.
 */
let t: TestApp;
const auth = { authorization: `Bearer ${API_KEY}` };
const BASE = Date.UTC(2026, 2, 1);

interface ApiLeg extends KpiLeg {
  callId: string;
  provider: string;
  accountId: string | null;
  direction: string | null;
  from: string | null;
  to: string | null;
  startedAt: string | null;
  parentCallId: string | null;
  final: boolean;
}

const legs: ApiLeg[] = [];

const get = async (url: string) => {
  const res = await t.app.inject({ method: 'GET', url, headers: auth });
  return { status: res.statusCode, body: res.json() };
};

beforeAll(async () => {
  t = await startTestApp(SECRETS);
  // Imported calls start within the `days` before baseTimeMs: here, the three days from BASE.
  const run = simulate({ seed: 'analytics', calls: 120, provider: 'mixed', baseTimeMs: BASE + 3 * 86_400_000, mode: 'import', days: 3, rate: 1, maxTalkSec: 900 });
  const res = await t.app.inject({
    method: 'POST', url: '/v1/import', headers: { ...auth, 'content-type': 'application/x-ndjson' },
    payload: run.deliveries.map(importLine).join('\n') + '\n',
  });
  expect(res.json()).toMatchObject({ rejected: [] });
  expect(res.statusCode).toBe(200);
  // The import answers counts, not positions: read-your-writes on the store's head.
  const head = await t.db.db.selectFrom('events').select((eb) => eb.fn.max('global_position').as('p')).executeTakeFirstOrThrow();
  const position = String(head.p);
  // The import is a few thousand events; on a loaded machine projecting them can outlast the API's 3 s
  // read-your-writes wait, so wait for the projector itself first (the answers are what is under test).
  expect(await (await readyProjector(t)).waitFor(position, 60_000)).toBe(true);
  let cursor: string | null = null;
  do {
    const page = await get(`/v1/calls?limit=1000&minPosition=${position}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    expect(page.body).toHaveProperty("data");
    expect(page.status).toBe(200);
    legs.push(...page.body.data);
    cursor = page.body.nextCursor;
  } while (cursor);
  expect(legs.length).toBeGreaterThan(150);
});
afterAll(async () => t.close());

const inWindow = (l: ApiLeg, since: number, until: number) => l.startedAt !== null && Date.parse(l.startedAt) >= since && Date.parse(l.startedAt) < until;

describe('GET /v1/analytics/summary', () => {
  it('equals the KPI definition over all legs, and grouped by provider', async () => {
    const all = await get('/v1/analytics/summary?groupBy=provider');
    expect(all.status).toBe(200);
    expect(all.body.totals).toEqual(computeKpis(legs));
    for (const g of all.body.groups) expect(g).toEqual({ key: g.key, ...computeKpis(legs.filter((l) => l.provider === g.key)) });
    expect(all.body.groups.map((g: { key: string }) => g.key).sort()).toEqual([...new Set(legs.map((l) => l.provider))].sort());
  });

  it('gives the same figures for a window that cuts hours in half (rollups inside, legs at the edges), grouped by day', async () => {
    const since = BASE + 5 * 3_600_000 + 17 * 60_000 + 3_000;
    const until = BASE + 2 * 86_400_000 + 9 * 3_600_000 + 41 * 60_000;
    const q = `since=${new Date(since).toISOString()}&until=${new Date(until).toISOString()}`;
    const r = await get(`/v1/analytics/summary?groupBy=day&${q}`);
    expect(r.status).toBe(200);
    const selected = legs.filter((l) => inWindow(l, since, until));
    expect(selected.length).toBeGreaterThan(20);
    expect(r.body.totals).toEqual(computeKpis(selected));
    for (const g of r.body.groups) {
      const day = Date.parse(g.key);
      expect(g).toEqual({ key: g.key, ...computeKpis(selected.filter((l) => inWindow(l, day, day + 86_400_000))) });
    }
    // A filter the rollups do not carry reads the legs, and agrees with them too.
    const prefix = await get(`/v1/analytics/summary?${q}&final=true&rootOnly=true`);
    expect(prefix.body.totals).toEqual(computeKpis(selected.filter((l) => l.final && l.parentCallId === null)));
  });

  it('agrees whichever rollup answers: by account (fine cells) and by status (coarse cells)', async () => {
    const byAccount = await get('/v1/analytics/summary?groupBy=accountId');
    for (const g of byAccount.body.groups) expect(g).toEqual({ key: g.key, ...computeKpis(legs.filter((l) => l.accountId === g.key)) });
    const byStatus = await get('/v1/analytics/summary?groupBy=status&rootOnly=true');
    for (const g of byStatus.body.groups) expect(g).toEqual({ key: g.key, ...computeKpis(legs.filter((l) => l.status === g.key && l.parentCallId === null)) });
    const direction = await get('/v1/analytics/summary?direction=inbound');
    expect(direction.body.totals).toEqual(computeKpis(legs.filter((l) => l.direction === 'inbound')));
    expect(byAccount.body.groups.length).toBeGreaterThan(1);
  });

  it('a number substring filter (numberContains) reads the legs, not the rollups that do not carry numbers, and equals the list', async () => {
    const sample = legs.find((l) => (l.from ?? '').length >= 8)!.from!;
    const needle = sample.slice(-5, -1);
    const selected = legs.filter((l) => !!l.from?.includes(needle) || !!l.to?.includes(needle));
    expect(selected.length).toBeGreaterThan(0);
    expect(selected.length).toBeLessThan(legs.length);
    const r = await get(`/v1/analytics/summary?numberContains=${encodeURIComponent(needle)}`);
    expect(r.status).toBe(200);
    expect(r.body.totals).toEqual(computeKpis(selected));
    expect((await get(`/v1/calls?numberContains=${encodeURIComponent(needle)}&withTotal=true&limit=1`)).body.total).toBe(selected.length);
  });

  it('names the parameter it refuses', async () => {
    const r = await get('/v1/analytics/summary?groupBy=color');
    expect(r.status).toBe(400);
    expect(r.body.error.message).toContain('groupBy');
    expect((await t.app.inject({ method: 'GET', url: '/v1/analytics/summary' })).statusCode).toBe(401);
  });
});

describe('GET /v1/analytics/timeseries', () => {
  it('has one bucket per hour of the window, empty ones included, each equal to the KPIs of its legs', async () => {
    const since = BASE + 86_400_000;
    const until = since + 30 * 3_600_000;
    const r = await get(`/v1/analytics/timeseries?interval=hour&since=${new Date(since).toISOString()}&until=${new Date(until).toISOString()}`);
    expect(r.status).toBe(200);
    expect(r.body.buckets).toHaveLength(30);
    r.body.buckets.forEach((b: { start: string }, i: number) => {
      const start = since + i * 3_600_000;
      expect(b).toEqual({ start: new Date(start).toISOString(), ...computeKpis(legs.filter((l) => inWindow(l, start, start + 3_600_000))) });
    });
    const counted = r.body.buckets.reduce((n: number, b: { legs: number }) => n + b.legs, 0);
    expect(counted).toBe(legs.filter((l) => inWindow(l, since, until)).length);
    expect(counted).toBeGreaterThan(0);
  });

  it('requires an interval', async () => {
    const r = await get('/v1/analytics/timeseries');
    expect(r.status).toBe(400);
    expect(r.body.error.message).toContain('interval');
  });
});
