import { describe, expect, it } from 'vitest';
import { percentile } from '../bench/bench-support.js';

describe('bench percentile (HDR histogram)', () => {
  it('gives the order statistic of unsorted latencies within 0.1 %', () => {
    const ms = Array.from({ length: 1000 }, (_, i) => ((i * 7919) % 1000) + 1 + 0.25);
    expect(percentile(ms, 0.5)).toBeGreaterThanOrEqual(500.25);
    expect(percentile(ms, 0.5)).toBeLessThanOrEqual(500.25 * 1.001);
    expect(percentile(ms, 0.99)).toBeGreaterThanOrEqual(990.25);
    expect(percentile(ms, 0.99)).toBeLessThanOrEqual(990.25 * 1.001);
    expect(percentile([0.2, 3], 1)).toBeCloseTo(3, 2);
  });
});
