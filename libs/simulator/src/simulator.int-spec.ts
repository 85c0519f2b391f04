import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildCallForest, computeKpis, type CallLegRow, type CallTreeNode, type KpiLeg } from '@lib/ledger';
import type { Projector } from '@lib/projections';
import { API_KEY, readyProjector, SECRETS, startTestApp, type TestApp } from '../../../test/support/test-app.js';
import { diffCallTree, diffKpis, diffQueueEvents, formatDifference, type Difference } from './check.js';
import { SCENARIO_KINDS, SIM_PROVIDERS, kindsFor } from './scenario.js';
import { importLine, simulate } from './simulate.js';
import { signDelivery } from './signing.js';

/**
 * The simulator's expectations against the real thing: rendered traffic goes through the real adapters
 * (signatures, translation), the event store and the call_legs projection of the in-process app, and the read
 * model must match the expected outcome leg by leg, for every scenario kind of every provider, in both modes.
 */
let t: TestApp;
let projector: Projector;
beforeAll(async () => {
  t = await startTestApp(SECRETS);
  projector = await readyProjector(t);
});
afterAll(async () => t.close());

const secrets = { freeclimb: SECRETS.FREECLIMB_SIGNING_SECRET, jambonz: SECRETS.JAMBONZ_WEBHOOK_SECRET, twilio: SECRETS.TWILIO_AUTH_TOKEN, restcomm: SECRETS.RESTCOMM_WEBHOOK_TOKEN };

interface LegDbRow {
  provider: string;
  call_id: string;
  account_id: string | null;
  parent_call_id: string | null;
  root_call_id: string;
  depth: number;
  direction: string | null;
  from_number: string | null;
  to_number: string | null;
  status: string;
  started_at: Date | null;
  answered_at: Date | null;
  ended_at: Date | null;
  ring_duration_sec: number | null;
  talk_duration_sec: number | null;
  ring_duration_source: string | null;
  talk_duration_source: string | null;
  answered_by: string | null;
  end_reason: string | null;
  sip_status: number | null;
  conference_ids: string[];
  final: boolean;
  event_count: number;
  last_position: string;
  link_conflict: boolean;
  invalid_fields: CallLegRow['invalidFields'];
  verification: string;
}

/** The read model in the shape of the query API's CallLeg (camelCase, durationSource = {ring, talk}). */
const readTrees = async (provider: string, rootIds: readonly string[]): Promise<Map<string, unknown>> => {
  const rows = await sql<LegDbRow>`SELECT * FROM call_legs WHERE provider = ${provider} AND root_call_id = ANY(${[...rootIds]})`.execute(t.db.db);
  const recs = await sql<{ call_id: string; recording_id: string; url: string; duration_sec: number | null; scope: string; created_at: Date }>`
    SELECT * FROM recordings WHERE provider = ${provider} AND root_call_id = ANY(${[...rootIds]})`.execute(t.db.db);
  const legs: CallLegRow[] = rows.rows.map((r) => ({
    provider: r.provider as CallLegRow['provider'],
    accountId: r.account_id,
    callId: r.call_id,
    parentCallId: r.parent_call_id,
    direction: r.direction as CallLegRow['direction'],
    from: r.from_number,
    to: r.to_number,
    status: r.status as CallLegRow['status'],
    startedAt: r.started_at?.toISOString() ?? null,
    answeredAt: r.answered_at?.toISOString() ?? null,
    endedAt: r.ended_at?.toISOString() ?? null,
    ringDurationSec: r.ring_duration_sec,
    talkDurationSec: r.talk_duration_sec,
    ringDurationSource: r.ring_duration_source as CallLegRow['ringDurationSource'],
    talkDurationSource: r.talk_duration_source as CallLegRow['talkDurationSource'],
    answeredBy: r.answered_by as CallLegRow['answeredBy'],
    endReason: r.end_reason,
    sipStatus: r.sip_status,
    conferenceIds: r.conference_ids,
    recordings: recs.rows
      .filter((x) => x.call_id === r.call_id)
      .map((x) => ({ recordingId: x.recording_id, url: x.url, durationSec: x.duration_sec, scope: x.scope as 'call', callId: x.call_id, createdAt: x.created_at.toISOString() })),
    final: r.final,
    eventCount: r.event_count,
    lastPosition: String(r.last_position),
    linkConflict: r.link_conflict,
    invalidFields: r.invalid_fields,
    verification: r.verification as CallLegRow['verification'],
    answeredByDetail: null, hangupBy: null, endReasonDetail: null, startedAtSource: null, answeredAtSource: null, endedAtSource: null, pddSec: null,
  }));
  const toApi = (n: CallTreeNode): unknown => ({ ...n, durationSource: { ring: n.ringDurationSource, talk: n.talkDurationSource }, children: n.children.map(toApi) });
  return new Map(buildCallForest(legs).map((root) => [root.callId, toApi(root)]));
};

const compare = async (run: ReturnType<typeof simulate>): Promise<Difference[]> => {
  const diffs: Difference[] = [];
  const actualLegs: KpiLeg[] = [];
  for (const provider of SIM_PROVIDERS) {
    const calls = run.expected.calls.filter((c) => c.provider === provider);
    if (calls.length === 0) continue;
    const trees = await readTrees(provider, calls.map((c) => c.rootCallId));
    for (const call of calls) diffs.push(...diffCallTree(call, trees.get(call.rootCallId) ?? null));
    for (const call of calls.filter((c) => c.queues)) {
      const res = await t.app.inject({ method: 'GET', url: `/v1/calls/${encodeURIComponent(call.rootCallId)}/events?provider=${provider}&tree=true`, headers: { authorization: `Bearer ${API_KEY}` } });
      diffs.push(...diffQueueEvents(call, res.json()));
    }
    const walk = (n: unknown): void => {
      const node = n as CallLegRow & { children: unknown[] };
      // As the analytics: a leg without a start time is in no time window.
      if (node.startedAt !== null) actualLegs.push(node);
      node.children.forEach(walk);
    };
    trees.forEach(walk);
  }
  diffs.push(...diffKpis(run.expected.totals, computeKpis(actualLegs), 'totals'));
  return diffs;
};

/** Every kind of every provider at least a few times, whatever the draw. */
const everyKind = (mode: 'live' | 'import', baseTimeMs: number, seed: string) =>
  SIM_PROVIDERS.flatMap((provider) =>
    kindsFor(provider).map((kind) => simulate({ seed: `${seed}-${provider}-${kind}`, calls: 4, provider, baseTimeMs, mode, days: 3, rate: 5, maxTalkSec: 40, kinds: [kind] })),
  );

describe('simulated traffic through the real adapters, store and projection', () => {
  it('import mode: the read model matches the expected outcome for every scenario kind of every provider', async () => {
    const runs = everyKind('import', Date.UTC(2026, 0, 10), 'int-import');
    expect(new Set(runs.map((r) => r.calls[0]!.kind)).size).toBe(SCENARIO_KINDS.length);
    // Issue 11: apps with action hooks only, in every dialect, and Twilio queues.
    const drawn = new Set(runs.map((r) => `${r.calls[0]!.provider}:${r.calls[0]!.kind}`));
    for (const p of SIM_PROVIDERS) expect(drawn).toContain(`${p}:action-hooks-only`);
    expect(drawn).toContain('twilio:queue');
    const body = runs.flatMap((r) => r.deliveries.map(importLine)).join('\n') + '\n';
    const res = await t.app.inject({ method: 'POST', url: '/v1/import', headers: { 'content-type': 'application/x-ndjson', authorization: `Bearer ${API_KEY}` }, payload: body });
    expect(res.statusCode).toBe(200);
    const result = res.json();
    expect(result.rejected).toEqual([]);
    expect(result.duplicates).toBe(runs.reduce((s, r) => s + r.expected.retries, 0));
    // The import answer carries no position; the store's head is what the projector must reach.
    const head = await sql<{ max: string }>`SELECT max(global_position)::text AS max FROM events`.execute(t.db.db);
    expect(await projector.waitFor(head.rows[0]!.max, 10_000)).toBe(true);
    const diffs = (await Promise.all(runs.map(compare))).flat();
    expect(diffs.map(formatDifference)).toEqual([]);
  });

  it('backfill: lines received now, provider clocks in the past; RCML calls land in their own hour, not the import\'s', async () => {
    const importedAtMs = Date.UTC(2026, 5, 1, 9, 30);
    const runs = SIM_PROVIDERS.flatMap((provider) =>
      kindsFor(provider).map((kind) =>
        simulate({ seed: `int-backfill-${provider}-${kind}`, calls: 3, provider, baseTimeMs: Date.UTC(2018, 2, 10), mode: 'import', days: 2, rate: 1, maxTalkSec: 40, kinds: [kind], importedAtMs }),
      ),
    );
    for (const run of runs) expect(run.deliveries.every((d) => d.receivedAtMs >= importedAtMs)).toBe(true);
    const body = runs.flatMap((r) => r.deliveries.map(importLine)).join('\n') + '\n';
    const res = await t.app.inject({ method: 'POST', url: '/v1/import', headers: { 'content-type': 'application/x-ndjson', authorization: `Bearer ${API_KEY}` }, payload: body });
    expect(res.statusCode).toBe(200);
    expect(res.json().rejected).toEqual([]);
    const head = await sql<{ max: string }>`SELECT max(global_position)::text AS max FROM events`.execute(t.db.db);
    expect(await projector.waitFor(head.rows[0]!.max, 10_000)).toBe(true);
    const diffs = (await Promise.all(runs.map(compare))).flat();
    expect(diffs.map(formatDifference)).toEqual([]);

    // The expectation itself puts every Restcomm leg that sent anything of its own (CallTimestamp, Timestamp), and
    // every Twilio leg with a clock of its own, in 2018: the check above held the ledger to it. FreeClimb and jambonz
    // have no clock an import can carry (but a jambonz conference hook's `time`), nor has a child known only from its
    // parent's unstamped Dial action.
    const legs = runs.flatMap((r) => r.expected.calls.flatMap((c) => c.legs));
    const year = (l: (typeof legs)[number]) => (l.startedAt ? new Date(l.startedAt).getUTCFullYear() : null);
    const restcomm = legs.filter((l) => l.provider === 'restcomm' && l.direction !== null && l.startedAt);
    expect(restcomm.filter((l) => year(l) !== 2018)).toEqual([]);
    expect(restcomm.length).toBeGreaterThan(20);
    expect(legs.filter((l) => l.provider === 'twilio' && l.direction !== 'inbound' && year(l) === 2018).length).toBeGreaterThan(10);
    expect(legs.filter((l) => (l.provider === 'freeclimb' || l.provider === 'jambonz') && l.conferenceIds.length === 0).every((l) => l.startedAt === null || year(l) === 2026)).toBe(true);
    // A Twilio inbound leg (voice request without Timestamp, status callbacks with it) lands in its own past too.
    expect(legs.filter((l) => l.provider === 'twilio' && l.direction === 'inbound' && year(l) === 2018).length).toBeGreaterThan(0);
  });

  it('live mode: signed posts are accepted, retries come back as duplicates, and the read model matches', async () => {
    // Live signatures must lie within ±5 min of the ledger's clock: start the simulated traffic now.
    const baseTimeMs = Math.floor(Date.now() / 1000) * 1000 - 60_000;
    const runs = everyKind('live', baseTimeMs, 'int-live');
    let max = 0n;
    let duplicates = 0;
    for (const run of runs) {
      for (const d of run.deliveries) {
        const s = signDelivery(d, secrets, 'https://ledger.example.com');
        const res = await t.app.inject({ method: 'POST', url: s.url, headers: s.headers, payload: s.body });
        expect(res.statusCode, `${d.provider} ${d.path} ${res.body}`).toBe(200);
        const receipt = res.json() as { position: string | null; duplicate: boolean; events: string[] };
        expect(receipt.events).not.toContain('UnrecognizedWebhook');
        if (receipt.duplicate) duplicates += 1;
        if (receipt.position !== null && BigInt(receipt.position) > max) max = BigInt(receipt.position);
      }
    }
    expect(duplicates).toBe(runs.reduce((s, r) => s + r.expected.retries, 0));
    expect(await projector.waitFor(max.toString(), 10_000)).toBe(true);
    const diffs = (await Promise.all(runs.map(compare))).flat();
    expect(diffs.map(formatDifference)).toEqual([]);
  });
});
