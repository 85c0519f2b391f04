import { describe, expect, it } from 'vitest';
import { LoopSlicer, mapInSlices } from './loop-slices.js';

describe('LoopSlicer', () => {
  it('is due once its slice is used up, and a yield lets queued immediates run', async () => {
    const slicer = new LoopSlicer(0);
    expect(slicer.due).toBe(true);
    let ran = false;
    setImmediate(() => (ran = true));
    await slicer.yield();
    expect(ran).toBe(true);
  });

  it('is not due within a long slice', () => {
    expect(new LoopSlicer(60_000).due).toBe(false);
  });
});

describe('mapInSlices', () => {
  it('maps in order, with indexes, like Array.map', async () => {
    const items = Array.from({ length: 50 }, (_, i) => i);
    expect(await mapInSlices(items, (x, i) => x * 10 + i, new LoopSlicer(0))).toEqual(items.map((x, i) => x * 10 + i));
    expect(await mapInSlices([], (x: number) => x)).toEqual([]);
  });

  it('lets other work run between items once a slice is used up', async () => {
    const order: string[] = [];
    setImmediate(() => order.push('other'));
    await mapInSlices([1, 2, 3], (x) => order.push(`item ${x}`), new LoopSlicer(0));
    expect(order.indexOf('other')).toBeLessThan(order.indexOf('item 3'));
    expect(order.filter((x) => x.startsWith('item'))).toEqual(['item 1', 'item 2', 'item 3']);
  });
});
