import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { computeKpis, type KpiLeg } from '@lib/ledger';
import { importLine, simulate } from '@lib/simulator';
import { API_KEY, readyProjector, SECRETS, startTestApp, type TestApp } from '../support/test-app.js';

/**
 * The list filters that let every analytics figure drill through to exactly its legs (`attempt`, `answeredBy`) and
 * the number substring search (`numberContains`): each selects what its definition says over the legs the
 * unfiltered list holds, and the list's exact total equals the analytics figure it stands for.
 */
let t: TestApp;
const auth = { authorization: `Bearer ${API_KEY}` };
const BASE = Date.UTC(2026, 3, 1);
const TERMINAL = ['completed', 'busy', 'no-answer', 'failed', 'canceled'];

interface ApiLeg extends KpiLeg {
  callId: string;
  provider: string;
  from: string | null;
  to: string | null;
  startedAt: string | null;
}
const legs: ApiLeg[] = [];

const get = async (url: string) => {
  const res = await t.app.inject({ method: 'GET', url, headers: auth });
  return { status: res.statusCode, body: res.json() };
};
const total = async (q: string): Promise<number> => {
  const r = await get(`/v1/calls?limit=1&withTotal=true&${q}`);
  expect(r.status, JSON.stringify(r.body)).toBe(200);
  return r.body.total as number;
};
const listed = async (q: string): Promise<string[]> => {
  const out: string[] = [];
  let cursor: string | null = null;
  do {
    const r = await get(`/v1/calls?limit=1000&${q}${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    expect(r.status, JSON.stringify(r.body)).toBe(200);
    out.push(...r.body.data.map((l: ApiLeg) => `${l.provider}:${l.callId}`));
    cursor = r.body.nextCursor;
  } while (cursor);
  return out.sort();
};
const ids = (ls: ApiLeg[]) => ls.map((l) => `${l.provider}:${l.callId}`).sort();

beforeAll(async () => {
  t = await startTestApp(SECRETS);
  const run = simulate({ seed: 'drill', calls: 150, provider: 'mixed', baseTimeMs: BASE + 3 * 86_400_000, mode: 'import', days: 3, rate: 1, maxTalkSec: 600 });
  const res = await t.app.inject({
    method: 'POST', url: '/v1/import', headers: { ...auth, 'content-type': 'application/x-ndjson' },
    payload: run.deliveries.map(importLine).join('\n') + '\n',
  });
  expect(res.statusCode).toBe(200);
  const head = await t.db.db.selectFrom('events').select((eb) => eb.fn.max('global_position').as('p')).executeTakeFirstOrThrow();
  expect(await (await readyProjector(t)).waitFor(String(head.p), 60_000)).toBe(true);
  let cursor: string | null = null;
  do {
    const page = await get(`/v1/calls?limit=1000${cursor ? `&cursor=${encodeURIComponent(cursor)}` : ''}`);
    legs.push(...page.body.data);
    cursor = page.body.nextCursor;
  } while (cursor);
  expect(legs.length).toBeGreaterThan(150);
});
afterAll(async () => t.close());

describe('drill-through filters of GET /v1/calls', () => {
  it('attempt=true lists the legs with a terminal status, attempt=false the others; the total is the analytics attempts', async () => {
    expect(await listed('attempt=true')).toEqual(ids(legs.filter((l) => TERMINAL.includes(l.status))));
    expect(await listed('attempt=false')).toEqual(ids(legs.filter((l) => !TERMINAL.includes(l.status))));
    const summary = await get('/v1/analytics/summary');
    expect(summary.body.totals.attempts).toBeGreaterThan(0);
    expect(await total('attempt=true')).toBe(summary.body.totals.attempts);
  });

  it('answeredBy selects machine detection verdicts; status=completed&answeredBy=machine,fax totals the analytics machineAnswered', async () => {
    const machine = legs.filter((l) => l.status === 'completed' && (l.answeredBy === 'machine' || l.answeredBy === 'fax'));
    // The simulator's AMD scenarios answer some calls with a machine: the figure under test is not zero.
    expect(machine.length).toBeGreaterThan(0);
    expect(await listed('status=completed&answeredBy=machine,fax')).toEqual(ids(machine));
    expect(await listed('answeredBy=human')).toEqual(ids(legs.filter((l) => l.answeredBy === 'human')));
    const summary = await get('/v1/analytics/summary');
    expect(await total('status=completed&answeredBy=machine,fax')).toBe(summary.body.totals.machineAnswered);
  });

  it('the analytics take the same filters and agree with the KPI definition over those legs, windows cut mid-hour', async () => {
    const since = BASE + 7 * 3_600_000 + 13 * 60_000;
    const until = BASE + 2 * 86_400_000 + 3 * 3_600_000 + 29 * 60_000;
    const inWindow = (l: ApiLeg) => l.startedAt !== null && Date.parse(l.startedAt) >= since && Date.parse(l.startedAt) < until;
    const q = `since=${new Date(since).toISOString()}&until=${new Date(until).toISOString()}`;
    // attempt is served by the rollups (a set of statuses), answeredBy by the legs.
    const attempts = await get(`/v1/analytics/summary?${q}&attempt=true`);
    expect(attempts.body.totals).toEqual(computeKpis(legs.filter((l) => inWindow(l) && TERMINAL.includes(l.status))));
    const machine = await get(`/v1/analytics/summary?${q}&answeredBy=machine,fax`);
    expect(machine.body.totals).toEqual(computeKpis(legs.filter((l) => inWindow(l) && (l.answeredBy === 'machine' || l.answeredBy === 'fax'))));
    const all = await get(`/v1/analytics/summary?${q}`);
    expect(await total(`${q}&attempt=true`)).toBe(all.body.totals.attempts);
    expect(await total(`${q}&status=completed&answeredBy=machine,fax`)).toBe(all.body.totals.machineAnswered);
  });

  it('refuses bad values with a 400 naming the parameter', async () => {
    for (const [q, name] of [['answeredBy=robot', 'answeredBy'], ['answeredBy=machine,', 'answeredBy'], ['attempt=yes', 'attempt'], ['numberContains=', 'numberContains']] as const) {
      const r = await get(`/v1/calls?${q}`);
      expect(r.status, q).toBe(400);
      expect(r.body.error.code).toBe('QUERY.INVALID_PARAMETER');
      expect(r.body.error.message).toContain(`"${name}"`);
    }
  });
});
