import fc from 'fast-check';
import { sql } from 'kysely';
import { describe, expect, it } from 'vitest';
import { EventStoreRepository } from '@lib/event-store';
import { newEvent, resolveRoots } from '@lib/ledger';
import { createTestDatabase, jambonzRecord } from '@lib/testing';
import { callLegsProjection } from './call-legs.projection.js';
import { Projector } from './projector.js';

/**
 * Trees deeper than the heal's old hop limit (32): a chain of legs each dialled by the one before, as a forwarding
 * loop makes. Before MAX_TREE_DEPTH (trees.ts) a leg 33 levels down took the leg 32 above it as its root, and which
 * one depended on how the legs were batched, so the live read model and a rebuild differed.
 */
const chain = (prefix: string, n: number) =>
  Array.from({ length: n }, (_, i) =>
    jambonzRecord(`${prefix}${i}`, { events: [newEvent('CallRinging', `${prefix}${i}`, { sipStatus: 180 }, { accountId: 'acc', parentLegId: i === 0 ? null : `${prefix}${i - 1}` })] }),
  );

const treeOf = (n: number, perBatch: number, order: 'forward' | 'backward') => {
  const records = chain('L', n);
  if (order === 'backward') records.reverse();
  return project(records, perBatch);
};

/** Each leg's one event, naming its parent (or none), projected `perBatch` deliveries at a time, then rebuilt. */
const project = async (records: ReturnType<typeof chain>, perBatch: number) => {
  const tdb = await createTestDatabase(4);
  try {
    const store = new EventStoreRepository(tdb.db);
    const projector = new Projector(tdb.db, [callLegsProjection]);
    await projector.init();
    for (let i = 0; i < records.length; i += perBatch) {
      await store.appendBatch(records.slice(i, i + perBatch));
      await projector.runUntilCaughtUp();
    }
    const trees = async () =>
      (await sql<{ call_id: string; root_call_id: string; depth: number }>`SELECT call_id, root_call_id, depth FROM call_legs ORDER BY call_id`.execute(tdb.db)).rows;
    const live = await trees();
    await projector.rebuild('call_legs');
    return { live, rebuilt: await trees() };
  } finally {
    await tdb.drop();
  }
};

describe('call trees of deep chains and of cycles', () => {
  it('roots any parent links, cycles and self-links included, as the pure rule does, live in any batching and rebuilt', async () => {
    await fc.assert(
      fc.asyncProperty(
        // Up to 12 legs, each naming another leg (maybe itself, maybe one that never arrives) or none.
        fc.array(fc.option(fc.integer({ min: 0, max: 13 }), { nil: null }), { minLength: 1, maxLength: 12 }),
        fc.integer({ min: 1, max: 5 }),
        fc.boolean(),
        async (parents, perBatch, reversed) => {
          const id = (i: number) => `C${String.fromCharCode(97 + i)}`;
          const records = parents.map((p, i) =>
            jambonzRecord(id(i), { events: [newEvent('CallRinging', id(i), { sipStatus: 180 }, { accountId: 'acc', parentLegId: p === null ? null : id(p) })] }),
          );
          if (reversed) records.reverse();
          const { live, rebuilt } = await project(records, perBatch);
          const pure = resolveRoots(parents.map((p, i) => ({ callId: id(i), parentCallId: p === null ? null : id(p) })));
          const expected = [...pure].map(([callId, r]) => ({ call_id: callId, root_call_id: r.rootCallId, depth: r.depth })).sort((a, b) => (a.call_id < b.call_id ? -1 : 1));
          expect(live).toEqual(expected);
          expect(rebuilt).toEqual(expected);
        },
      ),
      { numRuns: 15, examples: [[[1, 2, 3, 4, 0], 1, false], [[4, 0, 1, 2, 3], 1, false], [[1, 0], 1, true]] },
    );
  }, 180_000);

  for (const order of ['forward', 'backward'] as const) {
    for (const perBatch of [1, 3, 40]) {
      it(`a 40-leg chain delivered ${order}, ${perBatch} a batch, has one root and depths 0..39`, async () => {
        const { live, rebuilt } = await treeOf(40, perBatch, order);
        const expected = Array.from({ length: 40 }, (_, i) => ({ call_id: `L${i}`, root_call_id: 'L0', depth: i })).sort((a, b) => (a.call_id < b.call_id ? -1 : 1));
        expect(live).toEqual(expected);
        expect(rebuilt).toEqual(expected);
      }, 60_000);
    }
  }
});
