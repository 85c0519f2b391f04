import { describe, expect, it } from 'vitest';
import { lookupTable } from './lookup-table.js';

describe('lookupTable', () => {
  it('answers only for its own keys, never for names an object inherits', () => {
    const t = lookupTable({ human: 'human' });
    expect(t.human).toBe('human');
    for (const inherited of ['toString', 'constructor', '__proto__', 'hasOwnProperty', 'valueOf']) expect(t[inherited]).toBeUndefined();
  });
});
