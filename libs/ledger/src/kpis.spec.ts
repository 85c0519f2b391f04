import { describe, expect, it } from 'vitest';
import { addKpiTotals, computeKpis, emptyKpiTotals, kpisOf, kpiTotalsOfLeg, type KpiLeg } from './kpis.js';

const leg = (status: KpiLeg['status'], talk: number | null = null, ring: number | null = null, answeredBy: KpiLeg['answeredBy'] = null): KpiLeg => ({
  status,
  talkDurationSec: talk,
  ringDurationSec: ring,
  answeredBy,
});

describe('computeKpis', () => {
  it('is null-safe on no attempts: ratios and averages are null, counts zero', () => {
    expect(computeKpis([leg('ringing'), leg('in-progress'), leg('initiated')])).toEqual({
      legs: 3, attempts: 0, answered: 0, asr: null, ner: null, acdSec: null, totalTalkSec: 0, avgRingSec: null,
      p50TalkSec: null, p90TalkSec: null, outcomes: { completed: 0, busy: 0, 'no-answer': 0, failed: 0, canceled: 0 }, machineAnswered: 0,
      machineRate: null,
    });
  });

  it('counts each leg as a seizure: ASR over attempts, NER also counting busy and no-answer, canceled in neither numerator', () => {
    const k = computeKpis([
      leg('completed', 60, 5, 'human'),
      leg('completed', 30, 3, 'machine'),
      leg('completed', 90, 4, 'fax'),
      leg('busy', 0, null),
      leg('no-answer', 0, 25),
      leg('failed', 0, 0),
      leg('canceled', 0, 7),
      leg('in-progress', null, 2),
    ]);
    expect(k).toMatchObject({ legs: 8, attempts: 7, answered: 3, machineAnswered: 2 });
    // Machine-answered rate over answered legs: a machine and a fax of three answers.
    expect(k.machineRate).toBeCloseTo(2 / 3, 12);
    expect(k.asr).toBeCloseTo(3 / 7, 12);
    expect(k.ner).toBeCloseTo(5 / 7, 12);
    expect(k.outcomes).toEqual({ completed: 3, busy: 1, 'no-answer': 1, failed: 1, canceled: 1 });
    expect(k.acdSec).toBe(60);
    expect(k.totalTalkSec).toBe(180);
    // The in-progress leg's ring time is not an attempt's; the busy leg has none.
    expect(k.avgRingSec).toBe(Math.round(((5 + 3 + 4 + 25 + 0 + 7) / 6) * 1000) / 1000);
    // Histogram estimates (talk-histogram.ts): rank 1.5 of 3 lies halfway into [60, 70); rank 2.7 into [90, 100)
    // gives 97, past the longest call (90): clamped to it.
    expect(k.p50TalkSec).toBe(65);
    expect(k.p90TalkSec).toBe(90);
  });

  it('never estimates a talk-time quantile outside the shortest and longest talk seen', () => {
    // One 61 s call: its bucket [60, 70) put p50 at 65 and p90 at 69, longer than any call.
    expect(computeKpis([leg('completed', 61)])).toMatchObject({ p50TalkSec: 61, p90TalkSec: 61 });
    // Past the last edge the open bucket answers its lower edge (4 h), shorter than every call in it.
    expect(computeKpis([leg('completed', 20_000), leg('completed', 30_000)])).toMatchObject({ p50TalkSec: 20_000, p90TalkSec: 20_000 });
    // Both in [12, 14): p50 interpolates to 13, below the shorter call; p90 to 13.8, between them.
    expect(computeKpis([leg('completed', 13.5), leg('completed', 13.9)])).toMatchObject({ p50TalkSec: 13.5, p90TalkSec: 13.8 });
  });

  it('does not depend on the order of the legs', () => {
    const legs = [leg('completed', 12.5, 1), leg('busy'), leg('completed', 3, 2), leg('no-answer', 0, 20)];
    expect(computeKpis([...legs].reverse())).toEqual(computeKpis(legs));
  });
});

describe('KPI totals', () => {
  it('give the same KPIs summed in any grouping (what lets the analytics add up hourly rollup cells)', () => {
    const legs = [leg('completed', 12.5, 1, 'machine'), leg('busy', null, 3), leg('completed', 300, 2), leg('no-answer', 0, 20), leg('ringing')];
    const halves = [legs.slice(0, 2), legs.slice(2)].map((part) => part.reduce((t, l) => addKpiTotals(t, kpiTotalsOfLeg(l)), emptyKpiTotals()));
    expect(kpisOf(addKpiTotals(halves[1]!, halves[0]!))).toEqual(computeKpis(legs));
  });
});
