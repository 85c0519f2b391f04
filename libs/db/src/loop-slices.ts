import { setImmediate as nextTurn } from 'node:timers/promises';

/**
 * How long code that builds or folds a large batch for the database may hold the event loop before it lets it turn.
 * The service has one loop: a projector batch catching up on 1,000 events folded them in one synchronous stretch of
 * 200–650 ms (bench/live-fold.probe.ts), during which no tee forward's answer, webhook or commit acknowledgement
 * was read. Cut into slices of about this long, the same work costs the same CPU, and what arrives meanwhile waits
 * at most a slice (plus whatever else is queued) instead of the whole batch.
 */
export const LOOP_SLICE_MS = 1;

/**
 * Cooperative slicing of a long loop: `if (slicer.due) await slicer.yield();` once per item. The check is a clock
 * read; the loop awaits only when its slice is used up, and then only until the I/O that came in meanwhile (and the
 * other immediates) have run, not for a timer.
 */
export class LoopSlicer {
  private since = performance.now();

  constructor(private readonly sliceMs = LOOP_SLICE_MS) {}

  get due(): boolean {
    return performance.now() - this.since >= this.sliceMs;
  }

  async yield(): Promise<void> {
    await nextTurn();
    this.since = performance.now();
  }
}

/** `items.map(f)` in slices (see LoopSlicer), for result sets and batches that can hold thousands of rows. */
export const mapInSlices = async <T, U>(items: readonly T[], f: (item: T, index: number) => U, slicer = new LoopSlicer()): Promise<U[]> => {
  const out: U[] = new Array<U>(items.length);
  for (let i = 0; i < items.length; i += 1) {
    if (slicer.due) await slicer.yield();
    out[i] = f(items[i]!, i);
  }
  return out;
};
