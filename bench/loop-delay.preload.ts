/**
 * Loaded into a benchmarked service with `node --import <this file>` (tee.compare.ts does it for every variant, so
 * a build that predates it is measured the same way): how late the service's event loop runs a 1 ms timer, tick by
 * tick, and every GC pause, each with its wall-clock time, written to LOOP_DELAY_OUT when the process exits. The
 * bench then reads only the ticks inside its own rounds of a route. prom-client's lag gauges sample every 10 ms and
 * reset at each scrape, too coarse for a tail of a few milliseconds; the cost here is one timer a millisecond.
 */
import { writeFileSync } from 'node:fs';
import { PerformanceObserver, constants, type PerformanceEntry } from 'node:perf_hooks';

export interface LoopDelayTrace {
  /**
   * Per tick: wall-clock ms (epoch) when the timer ran, how much later than 1 ms after the previous tick, and the CPU
   * ms the process used since the previous tick (what its own work held the loop for, GC helpers included; the rest
   * of a late tick is the process waiting for a core, which on a shared machine is the other tenants' doing).
   */
  ticks: [number, number, number][];
  /** Per GC pause: wall-clock ms at its end, 'minor' | 'major' | 'incremental' | 'weak', duration ms. */
  gcs: [number, string, number][];
}

const GC_KINDS: Record<number, string> = {
  [constants.NODE_PERFORMANCE_GC_MINOR]: 'minor',
  [constants.NODE_PERFORMANCE_GC_MAJOR]: 'major',
  [constants.NODE_PERFORMANCE_GC_INCREMENTAL]: 'incremental',
  [constants.NODE_PERFORMANCE_GC_WEAKCB]: 'weak',
};

const out = process.env.LOOP_DELAY_OUT;
if (out) {
  const now = () => performance.timeOrigin + performance.now();
  const ticks: [number, number, number][] = [];
  const gcs: [number, string, number][] = [];
  let last = performance.now();
  let cpu = process.cpuUsage();
  setInterval(() => {
    const t = performance.now();
    const used = process.cpuUsage(cpu);
    ticks.push([now(), Math.max(0, t - last - 1), (used.user + used.system) / 1000]);
    last = t;
    cpu = process.cpuUsage();
  }, 1).unref();
  new PerformanceObserver((list) => {
    for (const e of list.getEntries() as (PerformanceEntry & { detail?: { kind?: number } })[]) {
      gcs.push([performance.timeOrigin + e.startTime + e.duration, GC_KINDS[e.detail?.kind ?? -1] ?? 'other', e.duration]);
    }
  }).observe({ entryTypes: ['gc'] });
  process.on('exit', () => writeFileSync(out, JSON.stringify({ ticks, gcs } satisfies LoopDelayTrace)));
}
