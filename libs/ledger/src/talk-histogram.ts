/**
 * Talk-time histogram behind the p50/p90 KPIs. Percentiles are not additive, so hourly rollups keep a
 * histogram per cell instead of the raw durations; the query side merges cells and interpolates inside the
 * bucket that holds the rank (as Prometheus' histogram_quantile does). The edges are fixed numbers, shared
 * with SQL (`width_bucket(x, edges)`), so the projection, a rebuild and a raw query bucket identically.
 * Resolution: 1 s below 10 s, 2 s to 30 s, 5 s to 1 min, 10 s to 3 min, 20 s to 10 min, 1 min to 30 min.
 */
const range = (from: number, to: number, step: number): number[] => {
  const out: number[] = [];
  for (let x = from; x <= to; x += step) out.push(x);
  return out;
};

export const TALK_EDGES: readonly number[] = [
  ...range(1, 10, 1),
  ...range(12, 30, 2),
  ...range(35, 60, 5),
  ...range(70, 180, 10),
  ...range(200, 600, 20),
  ...range(660, 1800, 60),
  ...range(2100, 3600, 300),
  4500, 5400, 7200, 10800, 14400,
];

/** Bucket count: bucket 0 is [0, 1 s), bucket i is [edge[i-1], edge[i]), the last is open-ended. */
export const TALK_BUCKETS = TALK_EDGES.length + 1;

/** Same answer as PostgreSQL's `width_bucket(seconds, TALK_EDGES)`: the number of edges <= seconds. */
export const talkBucket = (seconds: number): number => {
  let lo = 0;
  let hi = TALK_EDGES.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (TALK_EDGES[mid]! <= seconds) lo = mid + 1;
    else hi = mid;
  }
  return lo;
};

export const emptyHistogram = (): number[] => new Array<number>(TALK_BUCKETS).fill(0);

export const addHistograms = (into: number[], other: readonly number[]): number[] => {
  for (let i = 0; i < TALK_BUCKETS; i++) into[i]! += other[i] ?? 0;
  return into;
};

/**
 * The q-quantile (0 < q <= 1) estimated from bucket counts: rank q·n, linear inside the bucket that holds it.
 * The open last bucket answers its lower edge (no upper bound to interpolate to). Null for an empty histogram.
 */
export const histogramQuantile = (counts: readonly number[], q: number): number | null => {
  const n = counts.reduce((a, b) => a + b, 0);
  if (n === 0) return null;
  const rank = q * n;
  let seen = 0;
  for (let i = 0; i < counts.length; i++) {
    const c = counts[i]!;
    if (c === 0) continue;
    if (seen + c >= rank) {
      const lower = i === 0 ? 0 : TALK_EDGES[i - 1]!;
      if (i >= TALK_EDGES.length) return lower;
      const upper = TALK_EDGES[i]!;
      return Math.round((lower + ((rank - seen) / c) * (upper - lower)) * 100) / 100;
    }
    seen += c;
  }
  return TALK_EDGES.at(-1)!;
};
