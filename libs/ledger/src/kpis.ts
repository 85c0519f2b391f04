import type { AnsweredBy, LegStatus } from './call-leg.js';
import { toMs } from './leg-rollup.js';
import { isTerminalStatus } from './project-call-leg.js';
import { addHistograms, emptyHistogram, histogramQuantile, talkBucket } from './talk-histogram.js';

/** What the KPIs read of a call leg (a CallLegRow, an API CallLeg or a simulator expectation all fit). */
export interface KpiLeg {
  status: LegStatus;
  talkDurationSec: number | null;
  ringDurationSec: number | null;
  answeredBy: AnsweredBy;
}

export interface Kpis {
  legs: number;
  attempts: number;
  answered: number;
  asr: number | null;
  ner: number | null;
  acdSec: number | null;
  totalTalkSec: number;
  avgRingSec: number | null;
  p50TalkSec: number | null;
  p90TalkSec: number | null;
  outcomes: { completed: number; busy: number; 'no-answer': number; failed: number; canceled: number };
  machineAnswered: number;
  /** machineAnswered / answered; null when nothing was answered. */
  machineRate: number | null;
}

/** Seconds keep the ledger's 3 decimals; ratios are left unrounded (presentation rounds). */
const sec = (v: number): number => Math.round(v * 1000) / 1000;

/**
 * Additive totals the KPIs are computed from: the same whether they are summed from legs (computeKpis) or
 * from the projection's hourly rollup cells (the analytics endpoints), so both give identical figures.
 * Durations are integer milliseconds, so sums are exact whatever the order.
 */
export interface KpiTotals {
  legs: number;
  /** Legs by status (every status, terminal or not). */
  byStatus: Partial<Record<LegStatus, number>>;
  /** Over completed legs: talk (missing as 0), the talk histogram, machine or fax answers. */
  completedTalkMs: number;
  completedTalkHistogram: number[];
  /**
   * Shortest and longest talk of a completed leg (null when none): a quantile interpolated inside its histogram
   * bucket may lie past the longest call seen (one 61 s call: the bucket [60, 70) put its p90 at 69 s), so the
   * estimates are clamped to what was observed. Not additive, but min/max merge exactly.
   */
  completedTalkMinMs: number | null;
  completedTalkMaxMs: number | null;
  machineAnswered: number;
  /** Over terminal legs with a known ring duration. */
  ringMs: number;
  ringN: number;
}

export const emptyKpiTotals = (): KpiTotals => ({
  legs: 0, byStatus: {}, completedTalkMs: 0, completedTalkHistogram: emptyHistogram(), completedTalkMinMs: null, completedTalkMaxMs: null,
  machineAnswered: 0, ringMs: 0, ringN: 0,
});

const pick = (a: number | null, b: number | null, f: (x: number, y: number) => number): number | null =>
  a === null ? b : b === null ? a : f(a, b);

export const addKpiTotals = (into: KpiTotals, other: KpiTotals): KpiTotals => {
  into.legs += other.legs;
  for (const [k, v] of Object.entries(other.byStatus) as [LegStatus, number][]) into.byStatus[k] = (into.byStatus[k] ?? 0) + v;
  into.completedTalkMs += other.completedTalkMs;
  addHistograms(into.completedTalkHistogram, other.completedTalkHistogram);
  into.completedTalkMinMs = pick(into.completedTalkMinMs, other.completedTalkMinMs, Math.min);
  into.completedTalkMaxMs = pick(into.completedTalkMaxMs, other.completedTalkMaxMs, Math.max);
  into.machineAnswered += other.machineAnswered;
  into.ringMs += other.ringMs;
  into.ringN += other.ringN;
  return into;
};

export const kpiTotalsOfLeg = (leg: KpiLeg): KpiTotals => {
  const t = emptyKpiTotals();
  t.legs = 1;
  t.byStatus[leg.status] = 1;
  if (isTerminalStatus(leg.status) && leg.ringDurationSec !== null) {
    t.ringMs = toMs(leg.ringDurationSec);
    t.ringN = 1;
  }
  if (leg.status === 'completed') {
    const talk = leg.talkDurationSec ?? 0;
    t.completedTalkMs = toMs(talk);
    t.completedTalkHistogram[talkBucket(talk)] = 1;
    t.completedTalkMinMs = t.completedTalkMaxMs = toMs(talk);
    if (leg.answeredBy === 'machine' || leg.answeredBy === 'fax') t.machineAnswered = 1;
  }
  return t;
};

/**
 * Call KPIs (ITU-T E.411/E.425; docs/architecture.md, "Design sources"), one definition for the analytics endpoints and the simulator's expectations.
 * Every leg is a seizure of its own (a simultaneous ring of three is three attempts), which is how carriers
 * count ASR per trunk.
 *
 * - legs: every leg in the set.
 * - attempts: legs with a terminal status (completed, busy, no-answer, failed, canceled). Legs still initiated,
 *   ringing or in progress are not attempts yet: their outcome is unknown, and counting them would move ASR as
 *   calls finish.
 * - answered: attempts with status `completed` (the projection only gives `completed` to legs that answered).
 * - asr = answered / attempts (ITU-T E.411); null when there are no attempts.
 * - ner = (answered + busy + no-answer) / attempts (ITU-T E.425: user busy and ring-no-answer are network
 *   successes; failed is not; canceled — the caller or the app gave up, e.g. a simultaneous-ring loser — stays in
 *   the denominator and in neither numerator); null when there are no attempts.
 * - acdSec: mean talkDurationSec over answered legs (answer to hang-up, a missing one as 0); null when nothing
 *   was answered.
 * - totalTalkSec: sum of talkDurationSec over answered legs.
 * - avgRingSec: mean ringDurationSec over attempts whose ring duration is known; null when none is.
 * - p50TalkSec / p90TalkSec: talk-time quantiles over answered legs, estimated from a fixed histogram
 *   (talk-histogram.ts: 1 s resolution below 10 s, 20 s between 3 and 10 min, interpolated inside the bucket),
 *   because percentiles cannot be summed across hourly rollups, then clamped to the shortest and longest talk
 *   seen (an estimate never lies outside the data); null when nothing was answered.
 * - outcomes: attempts by terminal status.
 * - machineAnswered: answered legs whose answeredBy is `machine` or `fax` (anything that is not a person): Twilio
 *   AnsweredBy machine_* / fax, FreeClimb machineDetected, jambonz amd_machine_* / amd_tone_detected.
 * - machineRate = machineAnswered / answered; null when nothing was answered.
 * Seconds are rounded to 3 decimals, like the read model.
 */
export const kpisOf = (t: KpiTotals): Kpis => {
  const n = (s: LegStatus) => t.byStatus[s] ?? 0;
  const outcomes = { completed: n('completed'), busy: n('busy'), 'no-answer': n('no-answer'), failed: n('failed'), canceled: n('canceled') };
  const attempts = outcomes.completed + outcomes.busy + outcomes['no-answer'] + outcomes.failed + outcomes.canceled;
  const answered = outcomes.completed;
  const quantile = (q: number) => {
    const v = histogramQuantile(t.completedTalkHistogram, q);
    if (v === null) return null;
    const lo = t.completedTalkMinMs === null ? v : t.completedTalkMinMs / 1000;
    const hi = t.completedTalkMaxMs === null ? v : t.completedTalkMaxMs / 1000;
    return sec(Math.min(hi, Math.max(lo, v)));
  };
  return {
    legs: t.legs,
    attempts,
    answered,
    asr: attempts ? answered / attempts : null,
    ner: attempts ? (answered + outcomes.busy + outcomes['no-answer']) / attempts : null,
    acdSec: answered ? sec(t.completedTalkMs / 1000 / answered) : null,
    totalTalkSec: sec(t.completedTalkMs / 1000),
    avgRingSec: t.ringN ? sec(t.ringMs / 1000 / t.ringN) : null,
    p50TalkSec: quantile(0.5),
    p90TalkSec: quantile(0.9),
    outcomes,
    machineAnswered: t.machineAnswered,
    machineRate: answered ? t.machineAnswered / answered : null,
  };
};

export function computeKpis(legs: readonly KpiLeg[]): Kpis {
  const total = emptyKpiTotals();
  for (const leg of legs) addKpiTotals(total, kpiTotalsOfLeg(leg));
  return kpisOf(total);
}
