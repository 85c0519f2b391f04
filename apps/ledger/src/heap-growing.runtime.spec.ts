import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { applyHeapGrowing, heapGrowingWhileBehind } from './heap-growing.runtime.js';

describe('applyHeapGrowing', () => {
  it('sets V8 heap growing percent, and leaves V8 alone at 0', () => {
    const set: string[] = [];
    applyHeapGrowing(100, (f) => set.push(f));
    applyHeapGrowing(0, (f) => set.push(f));
    expect(set).toEqual(['--heap-growing-percent=100']);
  });

  it('is a flag V8 accepts at run time (an unknown one would be reported on stderr)', () => {
    const r = spawnSync(process.execPath, ['-e', "require('node:v8').setFlagsFromString('--heap-growing-percent=100')"], { encoding: 'utf8' });
    expect(r.status).toBe(0);
    expect(r.stderr).toBe('');
  });

  it('switches to the bound for a projector that is behind and back once it has caught up, and does nothing without one', () => {
    const set: string[] = [];
    const onBehind = heapGrowingWhileBehind(100, 50, (f) => set.push(f))!;
    onBehind(true);
    onBehind(false);
    expect(set).toEqual(['--heap-growing-percent=50', '--heap-growing-percent=100']);
    // Back to V8's own choice when that is the normal setting.
    heapGrowingWhileBehind(0, 50, (f) => set.push(f))!(false);
    expect(set.at(-1)).toBe('--heap-growing-percent=0');
    expect(heapGrowingWhileBehind(100, 0)).toBeUndefined();
    expect(heapGrowingWhileBehind(50, 50)).toBeUndefined();
  });
});
