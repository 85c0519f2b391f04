import { describe, expect, it } from 'vitest';
import { computeKpis, percentileCont, type KpiLeg } from './kpis.js';

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
    expect(k.asr).toBeCloseTo(3 / 7, 12);
    expect(k.ner).toBeCloseTo(5 / 7, 12);
    expect(k.outcomes).toEqual({ completed: 3, busy: 1, 'no-answer': 1, failed: 1, canceled: 1 });
    expect(k.acdSec).toBe(60);
    expect(k.totalTalkSec).toBe(180);
    // The in-progress leg's ring time is not an attempt's; the busy leg has none.
    expect(k.avgRingSec).toBe(Math.round(((5 + 3 + 4 + 25 + 0 + 7) / 6) * 1000) / 1000);
    expect(k.p50TalkSec).toBe(60);
    expect(k.p90TalkSec).toBe(84);
  });

  it('does not depend on the order of the legs', () => {
    const legs = [leg('completed', 12.5, 1), leg('busy'), leg('completed', 3, 2), leg('no-answer', 0, 20)];
    expect(computeKpis([...legs].reverse())).toEqual(computeKpis(legs));
  });
});

describe('percentileCont', () => {
  it("interpolates like PostgreSQL's percentile_cont", () => {
    expect(percentileCont([], 0.5)).toBeNull();
    expect(percentileCont([7], 0.9)).toBe(7);
    expect(percentileCont([1, 2, 3, 4], 0.5)).toBe(2.5);
    expect(percentileCont([10, 20, 30, 40, 50], 0.9)).toBe(46);
  });
});
