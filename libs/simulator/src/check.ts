/**
 * Pure comparison of a ledger's answers with an expected outcome. No I/O: the CLI fetches, this decides.
 * Only fields present in the expectation are compared (a live run leaves out what it cannot know).
 */
import type { ExpectedCall, ExpectedKpis, ExpectedLeg, ExpectedQueueStay } from './expected-outcome.js';

export interface Difference {
  /** Where: `call 12 (freeclimb CA…) leg CA… status`, `totals asr`. */
  path: string;
  expected: unknown;
  actual: unknown;
}

/** Seconds and ratios: the ledger stores 3 decimals and may round ratios for display. */
const TOLERANCE = 0.0015;

const sameNumber = (a: number, b: number): boolean => Math.abs(a - b) <= TOLERANCE + 1e-9 * Math.abs(b);

const sameTime = (expected: string | null, actual: unknown): boolean => {
  if (expected === null || actual === null || actual === undefined) return expected === (actual ?? null);
  return typeof actual === 'string' && Date.parse(actual) === Date.parse(expected);
};

const same = (expected: unknown, actual: unknown): boolean => {
  if (typeof expected === 'number' && typeof actual === 'number') return sameNumber(expected, actual);
  if (typeof expected === 'number' && typeof actual === 'string' && actual.trim() !== '') return sameNumber(expected, Number(actual));
  return expected === (actual === undefined ? null : actual);
};

const LEG_FIELDS = ['parentCallId', 'rootCallId', 'depth', 'direction', 'from', 'to', 'status', 'answeredBy', 'talkDurationSec', 'durationSource', 'ringDurationSec', 'final'] as const;
const TIME_FIELDS = ['startedAt', 'answeredAt', 'endedAt'] as const;

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => v !== null && typeof v === 'object' && !Array.isArray(v);

export function diffLeg(expected: ExpectedLeg, actual: unknown, where: string): Difference[] {
  if (!isObject(actual)) return [{ path: where, expected: 'a call leg', actual }];
  const out: Difference[] = [];
  for (const field of LEG_FIELDS) {
    if (!(field in expected)) continue;
    const e = expected[field];
    // The API reports where each duration came from ({ring, talk}); the expectation is about the talk time.
    const got = field === 'durationSource' && isObject(actual[field]) ? (actual[field] as Json).talk : actual[field];
    if (!same(e, got)) out.push({ path: `${where} ${field}`, expected: e, actual: got ?? null });
  }
  for (const field of TIME_FIELDS) {
    if (!(field in expected)) continue;
    const e = expected[field] ?? null;
    if (!sameTime(e, actual[field])) out.push({ path: `${where} ${field}`, expected: e, actual: actual[field] ?? null });
  }
  const confs = Array.isArray(actual.conferenceIds) ? [...(actual.conferenceIds as unknown[])].map(String).sort() : actual.conferenceIds;
  if (JSON.stringify(confs) !== JSON.stringify([...expected.conferenceIds].sort())) {
    out.push({ path: `${where} conferenceIds`, expected: expected.conferenceIds, actual: confs ?? null });
  }
  const recs = Array.isArray(actual.recordings) ? (actual.recordings as unknown[]).filter(isObject) : [];
  const byId = new Map(recs.map((r) => [String(r.recordingId), r]));
  for (const rec of expected.recordings) {
    const got = byId.get(rec.recordingId);
    if (!got) {
      out.push({ path: `${where} recording ${rec.recordingId}`, expected: rec, actual: null });
      continue;
    }
    if (got.scope !== rec.scope) out.push({ path: `${where} recording ${rec.recordingId} scope`, expected: rec.scope, actual: got.scope });
    if (!same(rec.durationSec, got.durationSec)) out.push({ path: `${where} recording ${rec.recordingId} durationSec`, expected: rec.durationSec, actual: got.durationSec ?? null });
    byId.delete(rec.recordingId);
  }
  for (const id of byId.keys()) out.push({ path: `${where} recording ${id}`, expected: null, actual: 'unexpected recording' });
  return out;
}

/** Flattens a tree answer (`children` recursively) into callId -> node, with the parent each node hangs under. */
const flattenTree = (node: Json, parent: string | null, into: Map<string, { node: Json; under: string | null }>): void => {
  into.set(String(node.callId), { node, under: parent });
  const children = Array.isArray(node.children) ? node.children : [];
  for (const child of children) if (isObject(child)) flattenTree(child, String(node.callId), into);
};

/** Compares one call: tree shape (which legs hang under which) and every expected field of every leg. */
export function diffCallTree(expected: ExpectedCall, actual: unknown): Difference[] {
  const where = `call ${expected.index} (${expected.kind}, ${expected.provider} ${expected.rootCallId})`;
  if (!isObject(actual)) return [{ path: where, expected: 'a call tree', actual }];
  const nodes = new Map<string, { node: Json; under: string | null }>();
  flattenTree(actual, null, nodes);
  const out: Difference[] = [];
  for (const leg of expected.legs) {
    const got = nodes.get(leg.callId);
    const legWhere = `${where} leg ${leg.callId}`;
    if (!got) {
      out.push({ path: `${legWhere}`, expected: 'in the tree', actual: 'missing' });
      continue;
    }
    if (got.under !== leg.parentCallId) out.push({ path: `${legWhere} position in tree (parent)`, expected: leg.parentCallId, actual: got.under });
    out.push(...diffLeg(leg, got.node, legWhere));
    nodes.delete(leg.callId);
  }
  for (const id of nodes.keys()) out.push({ path: `${where} leg ${id}`, expected: 'not in the tree', actual: 'present' });
  return out;
}

/**
 * Queue stays against a leg's audit trail (GET /v1/calls/{id}/events?tree=true, `data[]` of {callId, type, data}):
 * the read model has no queue columns, so the events are where a queue shows.
 */
export function diffQueueEvents(call: ExpectedCall, actual: unknown): Difference[] {
  const where = `call ${call.index} (${call.kind}, ${call.provider} ${call.rootCallId})`;
  const stays: ExpectedQueueStay[] = call.queues ?? [];
  if (stays.length === 0) return [];
  const events = isObject(actual) && Array.isArray(actual.data) ? (actual.data as unknown[]).filter(isObject) : null;
  if (!events) return [{ path: `${where} events`, expected: 'an event list', actual }];
  const out: Difference[] = [];
  for (const q of stays) {
    const mine = events.filter((e) => e.callId === q.callId && isObject(e.data) && e.data.queueId === q.queueId);
    const entered = mine.filter((e) => e.type === 'QueueEntered').length;
    if (entered !== q.waitRequests) out.push({ path: `${where} leg ${q.callId} queue ${q.queueId} QueueEntered events`, expected: q.waitRequests, actual: entered });
    const left = mine.filter((e) => e.type === 'QueueLeft').map((e) => e.data as Json);
    const got = left.length === 1 ? { result: left[0]!.result ?? null, queueTimeSec: left[0]!.queueTimeSec ?? null } : { count: left.length };
    const want = { result: q.result, queueTimeSec: q.queueTimeSec };
    if (JSON.stringify(got) !== JSON.stringify(want)) out.push({ path: `${where} leg ${q.callId} queue ${q.queueId} QueueLeft`, expected: want, actual: got });
  }
  return out;
}

const KPI_FIELDS = ['legs', 'attempts', 'answered', 'asr', 'ner', 'acdSec', 'totalTalkSec', 'avgRingSec', 'p50TalkSec', 'p90TalkSec', 'machineAnswered', 'machineRate'] as const;

export function diffKpis(expected: ExpectedKpis, actual: unknown, where: string): Difference[] {
  if (!isObject(actual)) return [{ path: where, expected: 'KPIs', actual }];
  const out: Difference[] = [];
  for (const field of KPI_FIELDS) {
    if (!(field in expected)) continue;
    const e = expected[field] ?? null;
    if (!same(e, actual[field])) out.push({ path: `${where} ${field}`, expected: e, actual: actual[field] ?? null });
  }
  if (expected.outcomes) {
    const got = isObject(actual.outcomes) ? actual.outcomes : {};
    for (const [k, v] of Object.entries(expected.outcomes)) {
      if (!same(v, got[k] ?? 0)) out.push({ path: `${where} outcomes.${k}`, expected: v, actual: got[k] ?? null });
    }
  }
  return out;
}

export const formatDifference = (d: Difference): string => `${d.path}: expected ${JSON.stringify(d.expected)}, got ${JSON.stringify(d.actual)}`;
