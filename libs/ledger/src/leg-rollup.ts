import type { Direction, Provider } from './call-leg.events.js';
import type { CallLegRow, LegStatus } from './call-leg.js';
import { TALK_BUCKETS, talkBucket } from './talk-histogram.js';

/**
 * Hourly rollup cells behind the analytics. A cell is what the KPI filters and groupings can select on
 * without touching legs; every measure is an integer (durations in milliseconds), so adding a leg's
 * contribution and later taking it back leaves exactly the value a rebuild computes from scratch.
 */
export interface RollupCell {
  /** Start hour (UTC, ISO-8601), or null for a leg with no start time yet. */
  hour: string | null;
  provider: Provider;
  accountId: string | null;
  direction: Direction | null;
  status: LegStatus;
  /** No parent: the call itself rather than a leg it dialled (the `rootOnly` filter). */
  isRoot: boolean;
}

/**
 * Per cell. Talk time counts every leg (a missing duration as 0) and machine counts every machine or fax
 * answer: the KPIs (kpis.ts) read them from `completed` cells only, ring time from terminal ones.
 */
export interface RollupMeasures {
  legs: number;
  talkMs: number;
  ringMs: number;
  ringN: number;
  machine: number;
  talkHistogram: number[];
}

export type RollupLeg = Pick<
  CallLegRow,
  'provider' | 'accountId' | 'parentCallId' | 'direction' | 'status' | 'startedAt' | 'talkDurationSec' | 'ringDurationSec' | 'answeredBy'
>;

const HOUR_MS = 3_600_000;

/** Date#toISOString()'s own spelling (four-digit year, milliseconds, Z): the hour is its first 13 characters. */
const CANONICAL_ISO = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;

// The rows' times are already in that spelling (projectCallLeg, and the legs read back): cutting the string gives
// the same hour as a parse and a print, without the two Dates a live batch made per leg and rollup cell.
export const hourOf = (iso: string | null): string | null =>
  iso === null
    ? null
    : CANONICAL_ISO.test(iso)
      ? `${iso.slice(0, 13)}:00:00.000Z`
      : new Date(Math.floor(Date.parse(iso) / HOUR_MS) * HOUR_MS).toISOString();

/** Same rounding as the SQL side: floor(x * 1000 + 0.5). */
export const toMs = (seconds: number): number => Math.floor(seconds * 1000 + 0.5);

export const cellOf = (leg: RollupLeg): RollupCell => ({
  hour: hourOf(leg.startedAt),
  provider: leg.provider,
  accountId: leg.accountId,
  direction: leg.direction,
  status: leg.status,
  isRoot: leg.parentCallId === null,
});

export const cellKey = (c: RollupCell): string =>
  JSON.stringify([c.hour, c.provider, c.accountId, c.direction, c.status, c.isRoot]);

export const emptyMeasures = (): RollupMeasures => ({
  legs: 0, talkMs: 0, ringMs: 0, ringN: 0, machine: 0, talkHistogram: new Array<number>(TALK_BUCKETS).fill(0),
});

/** Adds `sign` (+1 or -1) times the leg's contribution into `m`. */
export const addLeg = (m: RollupMeasures, leg: RollupLeg, sign: 1 | -1): RollupMeasures => {
  m.legs += sign;
  const talk = leg.talkDurationSec ?? 0;
  m.talkMs += sign * toMs(talk);
  m.talkHistogram[talkBucket(talk)]! += sign;
  if (leg.ringDurationSec !== null) {
    m.ringMs += sign * toMs(leg.ringDurationSec);
    m.ringN += sign;
  }
  if (leg.answeredBy === 'machine' || leg.answeredBy === 'fax') m.machine += sign;
  return m;
};

/**
 * Net change to the rollups when legs move from `before` to `after` (either may be missing). Cells whose
 * change nets to zero are left out, so re-projecting an unchanged leg writes nothing.
 */
export const rollupDelta = (changes: readonly { before: RollupLeg | null; after: RollupLeg | null }[]): { cell: RollupCell; delta: RollupMeasures }[] => {
  const cells = new Map<string, { cell: RollupCell; delta: RollupMeasures }>();
  const apply = (leg: RollupLeg, sign: 1 | -1) => {
    const cell = cellOf(leg);
    const k = cellKey(cell);
    const entry = cells.get(k) ?? cells.set(k, { cell, delta: emptyMeasures() }).get(k)!;
    addLeg(entry.delta, leg, sign);
  };
  for (const { before, after } of changes) {
    if (before) apply(before, -1);
    if (after) apply(after, 1);
  }
  return [...cells.values()].filter(({ delta }) =>
    delta.legs !== 0 || delta.talkMs !== 0 || delta.ringMs !== 0 || delta.ringN !== 0 ||
    delta.machine !== 0 || delta.talkHistogram.some((x) => x !== 0));
};

/**
 * Deltas of a coarser rollup: the cells merged by the dimensions `keep` picks (same measures summed, zero
 * changes dropped). The coarse cell keeps the first fine cell's other fields, which its table does not store.
 */
export const coarsen = (
  cells: readonly { cell: RollupCell; delta: RollupMeasures }[],
  keep: readonly ((c: RollupCell) => unknown)[],
): { cell: RollupCell; delta: RollupMeasures }[] => {
  const out = new Map<string, { cell: RollupCell; delta: RollupMeasures }>();
  for (const { cell, delta } of cells) {
    const k = JSON.stringify(keep.map((f) => f(cell)));
    const e = out.get(k) ?? out.set(k, { cell, delta: emptyMeasures() }).get(k)!;
    e.delta.legs += delta.legs;
    e.delta.talkMs += delta.talkMs;
    e.delta.ringMs += delta.ringMs;
    e.delta.ringN += delta.ringN;
    e.delta.machine += delta.machine;
    const into = e.delta.talkHistogram;
    const from = delta.talkHistogram;
    for (let i = 0; i < from.length; i += 1) if (from[i] !== 0) into[i]! += from[i]!;
  }
  return [...out.values()].filter(({ delta }) =>
    delta.legs !== 0 || delta.talkMs !== 0 || delta.ringMs !== 0 || delta.ringN !== 0 || delta.machine !== 0 || delta.talkHistogram.some((x) => x !== 0));
};
