import type { AnsweredBy, LegStatus } from './call-leg.js';

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
}

const TERMINAL: ReadonlySet<LegStatus> = new Set(['completed', 'busy', 'no-answer', 'failed', 'canceled']);

/** Seconds keep the ledger's 3 decimals; ratios are left unrounded (presentation rounds). */
const sec = (v: number): number => Math.round(v * 1000) / 1000;

/** PostgreSQL's percentile_cont: linear interpolation between the two nearest ranks of the sorted values. */
export const percentileCont = (sorted: readonly number[], p: number): number | null => {
  if (sorted.length === 0) return null;
  const pos = p * (sorted.length - 1);
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
};

/**
 * Call KPIs over a set of legs (anchors.md §C.1), one definition for the analytics endpoint and the simulator's
 * expectations. Every leg is a seizure of its own (a simultaneous ring of three is three attempts), which is how
 * carriers count ASR per trunk.
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
 * - acdSec: mean talkDurationSec over answered legs (answer to hang-up); null when nothing was answered.
 * - totalTalkSec: sum of talkDurationSec over answered legs.
 * - avgRingSec: mean ringDurationSec over attempts whose ring duration is known; null when none is.
 * - p50TalkSec / p90TalkSec: percentile_cont(0.5 / 0.9) of talkDurationSec over answered legs; null when none.
 * - outcomes: attempts by terminal status.
 * - machineAnswered: answered legs whose answeredBy is `machine` or `fax` (anything that is not a person).
 * Seconds are rounded to 3 decimals, like the read model.
 */
export function computeKpis(legs: readonly KpiLeg[]): Kpis {
  const outcomes = { completed: 0, busy: 0, 'no-answer': 0, failed: 0, canceled: 0 };
  const talks: number[] = [];
  const rings: number[] = [];
  let machineAnswered = 0;
  for (const leg of legs) {
    if (!TERMINAL.has(leg.status)) continue;
    outcomes[leg.status as keyof typeof outcomes] += 1;
    if (leg.ringDurationSec !== null) rings.push(leg.ringDurationSec);
    if (leg.status === 'completed') {
      talks.push(leg.talkDurationSec ?? 0);
      if (leg.answeredBy === 'machine' || leg.answeredBy === 'fax') machineAnswered += 1;
    }
  }
  const attempts = outcomes.completed + outcomes.busy + outcomes['no-answer'] + outcomes.failed + outcomes.canceled;
  const answered = outcomes.completed;
  const totalTalk = talks.reduce((s, v) => s + v, 0);
  const sorted = [...talks].sort((a, b) => a - b);
  const p = (q: number): number | null => {
    const v = percentileCont(sorted, q);
    return v === null ? null : sec(v);
  };
  return {
    legs: legs.length,
    attempts,
    answered,
    asr: attempts ? answered / attempts : null,
    ner: attempts ? (answered + outcomes.busy + outcomes['no-answer']) / attempts : null,
    acdSec: answered ? sec(totalTalk / answered) : null,
    totalTalkSec: sec(totalTalk),
    avgRingSec: rings.length ? sec(rings.reduce((s, v) => s + v, 0) / rings.length) : null,
    p50TalkSec: p(0.5),
    p90TalkSec: p(0.9),
    outcomes,
    machineAnswered,
  };
}
