import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { applyHeapGrowing } from './heap-growing.runtime.js';

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
});
