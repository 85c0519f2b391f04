import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addHistograms, emptyHistogram, histogramQuantile, TALK_BUCKETS, TALK_EDGES, talkBucket } from './talk-histogram.js';

const histogramOf = (xs: number[]) => {
  const h = emptyHistogram();
  for (const x of xs) h[talkBucket(x)]! += 1;
  return h;
};

const exactQuantile = (xs: number[], q: number) => [...xs].sort((a, b) => a - b)[Math.max(0, Math.ceil(q * xs.length) - 1)]!;

describe('talk histogram', () => {
  it('has strictly increasing edges and puts each value between its edges', () => {
    for (let i = 1; i < TALK_EDGES.length; i++) expect(TALK_EDGES[i]!).toBeGreaterThan(TALK_EDGES[i - 1]!);
    expect(talkBucket(0)).toBe(0);
    expect(talkBucket(0.99)).toBe(0);
    expect(talkBucket(1)).toBe(1);
    expect(talkBucket(59.9)).toBe(talkBucket(55));
    expect(talkBucket(1e9)).toBe(TALK_BUCKETS - 1);
    fc.assert(
      fc.property(fc.double({ min: 0, max: 20000, noNaN: true }), (x) => {
        const b = talkBucket(x);
        if (b > 0) expect(TALK_EDGES[b - 1]!).toBeLessThanOrEqual(x);
        if (b < TALK_EDGES.length) expect(x).toBeLessThan(TALK_EDGES[b]!);
      }),
    );
  });

  it('estimates a quantile inside the bucket of the exact one, whatever the order the cells are merged in', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 3600 }), { minLength: 1, maxLength: 300 }), fc.double({ min: 0.01, max: 1, noNaN: true }), (xs, q) => {
        const est = histogramQuantile(histogramOf(xs), q)!;
        const exact = exactQuantile(xs, q);
        const b = talkBucket(exact);
        const lower = b === 0 ? 0 : TALK_EDGES[b - 1]!;
        const upper = b < TALK_EDGES.length ? TALK_EDGES[b]! : Infinity;
        expect(est).toBeGreaterThanOrEqual(lower);
        expect(est).toBeLessThanOrEqual(upper);
        const half = Math.floor(xs.length / 2);
        const merged = addHistograms(histogramOf(xs.slice(half)), histogramOf(xs.slice(0, half)));
        expect(histogramQuantile(merged, q)).toBe(est);
      }),
    );
  });

  // The error bound is the bucket, not a fixed percentage: a median of 71 s in [70, 80) may be estimated as
  // 79.9 s (12 %), which a "within 10 %" property found now and then (fast-check's random arrays).
  it('estimates the median inside the bucket that holds the exact (nearest-rank) median, 10 s to 30 min', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 10, max: 1800 }), { minLength: 50, maxLength: 400 }), (xs) => {
        const est = histogramQuantile(histogramOf(xs), 0.5)!;
        const b = talkBucket(exactQuantile(xs, 0.5));
        expect(est).toBeGreaterThanOrEqual(TALK_EDGES[b - 1]!);
        expect(est).toBeLessThanOrEqual(TALK_EDGES[b]!);
        // Relative width of any bucket from 10 s up: at most 20 % (the 2 s buckets from 10 s).
        expect((TALK_EDGES[b]! - TALK_EDGES[b - 1]!) / TALK_EDGES[b - 1]!).toBeLessThanOrEqual(0.2);
      }),
    );
  });

  it('answers null for no answered legs', () => {
    expect(histogramQuantile(emptyHistogram(), 0.5)).toBeNull();
  });
});
