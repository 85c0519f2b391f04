import { describe, expect, it } from 'vitest';
import fc from 'fast-check';
import type { CallLegRow } from './call-leg.js';
import { buildCallForest, buildCallTree, resolveRoots, type CallTreeNode } from './call-tree.js';
import { projectCallLeg } from './project-call-leg.js';
import { callScenarioArb, legInputsOf } from './testing/call-scenarios.js';

const row = (callId: string, parentCallId: string | null, startedAt: string | null = null): CallLegRow => ({
  provider: 'jambonz', accountId: 'AC1', callId, parentCallId, direction: null, from: null, to: null, status: 'initiated',
  startedAt, answeredAt: null, endedAt: null, ringDurationSec: null, talkDurationSec: null, ringDurationSource: null,
  talkDurationSource: null, answeredBy: null, endReason: null, sipStatus: null, conferenceIds: [], recordings: [], final: false,
  eventCount: 1, lastPosition: '1', linkConflict: false, invalidFields: [], verification: 'verified', answeredByDetail: null, hangupBy: null, endReasonDetail: null, startedAtSource: null, answeredAtSource: null, endedAtSource: null, pddSec: null,
});

const shape = (node: CallTreeNode): unknown => ({ id: node.callId, root: node.rootCallId, depth: node.depth, children: node.children.map(shape) });

describe('resolveRoots', () => {
  it('follows parentCallId within the set; root = topmost known ancestor', () => {
    const roots = resolveRoots([
      { callId: 'gc', parentCallId: 'c' },
      { callId: 'c', parentCallId: 'r' },
      { callId: 'r', parentCallId: null },
      { callId: 'orphan', parentCallId: 'not-in-set' },
      { callId: 'o-child', parentCallId: 'orphan' },
    ]);
    expect(Object.fromEntries(roots)).toEqual({
      r: { rootCallId: 'r', depth: 0 },
      c: { rootCallId: 'r', depth: 1 },
      gc: { rootCallId: 'r', depth: 2 },
      orphan: { rootCallId: 'orphan', depth: 0 },
      'o-child': { rootCallId: 'orphan', depth: 1 },
    });
  });

  it('breaks cycles deterministically at the smallest callId of the cycle', () => {
    const legs = [
      { callId: 'b', parentCallId: 'a' },
      { callId: 'a', parentCallId: 'c' },
      { callId: 'c', parentCallId: 'b' },
      { callId: 'd', parentCallId: 'c' },
      { callId: 'self', parentCallId: 'self' },
    ];
    const expected = {
      a: { rootCallId: 'a', depth: 0 },
      b: { rootCallId: 'a', depth: 1 },
      c: { rootCallId: 'a', depth: 2 },
      d: { rootCallId: 'a', depth: 3 },
      self: { rootCallId: 'self', depth: 0 },
    };
    expect(Object.fromEntries(resolveRoots(legs))).toEqual(expected);
    expect(Object.fromEntries(resolveRoots([...legs].reverse()))).toEqual(expected);
  });
});

describe('buildCallTree', () => {
  it('returns the root with children sorted by startedAt (nulls last) then callId', () => {
    const tree = buildCallTree([
      row('c3', 'r', null),
      row('c2', 'r', '2024-01-01T00:00:05.000Z'),
      row('r', null, '2024-01-01T00:00:00.000Z'),
      row('c1', 'r', '2024-01-01T00:00:05.000Z'),
      row('c0', 'r', '2024-01-01T00:00:01.000Z'),
      row('gc', 'c2', '2024-01-01T00:00:09.000Z'),
    ]);
    expect(shape(tree)).toEqual({
      id: 'r', root: 'r', depth: 0,
      children: [
        { id: 'c0', root: 'r', depth: 1, children: [] },
        { id: 'c1', root: 'r', depth: 1, children: [] },
        { id: 'c2', root: 'r', depth: 1, children: [{ id: 'gc', root: 'r', depth: 2, children: [] }] },
        { id: 'c3', root: 'r', depth: 1, children: [] },
      ],
    });
  });

  it('prefers a true root over an orphan, throws on an empty set; the forest keeps every tree', () => {
    const legs = [row('orphan', 'missing', '2024-01-01T00:00:00.000Z'), row('r', null, '2024-01-01T00:00:09.000Z')];
    expect(buildCallTree(legs).callId).toBe('r');
    expect(buildCallForest(legs).map((n) => n.callId)).toEqual(['r', 'orphan']);
    expect(() => buildCallTree([])).toThrow(RangeError);
  });

  it('keeps one row per callId whatever the order (highest lastPosition)', () => {
    const older = row('r', null);
    const newer = { ...row('r', null), lastPosition: '10', status: 'completed' as const };
    expect(buildCallTree([older, newer]).status).toBe('completed');
    expect(buildCallTree([newer, older]).status).toBe('completed');
  });
});

describe('call tree properties', () => {
  const rowsOf = (events: Parameters<typeof legInputsOf>[0]) =>
    legInputsOf(events).map(projectCallLeg).filter((r): r is CallLegRow => r !== null);

  it('builds the same tree for any order of the rows, rooted at the generated root and holding every leg', () => {
    fc.assert(
      fc.property(
        callScenarioArb.chain((s) => fc.tuple(fc.constant(s), fc.shuffledSubarray(rowsOf(s.events), { minLength: rowsOf(s.events).length }))),
        ([scenario, shuffledRows]) => {
          const rows = rowsOf(scenario.events);
          const tree = buildCallTree(rows);
          expect(buildCallTree(shuffledRows)).toEqual(tree);
          expect(Object.fromEntries(resolveRoots(shuffledRows))).toEqual(Object.fromEntries(resolveRoots(rows)));
          expect(tree.callId).toBe(scenario.rootCallId);
          const nodes: CallTreeNode[] = [];
          const walk = (n: CallTreeNode) => (nodes.push(n), n.children.forEach(walk));
          walk(tree);
          expect(nodes.map((n) => n.callId).sort()).toEqual(scenario.legs.map((l) => l.callId).sort());
          for (const n of nodes) {
            expect(n.rootCallId).toBe(scenario.rootCallId);
            for (const c of n.children) expect(c.depth).toBe(n.depth + 1);
          }
        },
      ),
      { numRuns: 200 },
    );
  });

  it('resolveRoots is order-free on arbitrary (also cyclic) link sets and roots map to themselves', () => {
    const linksArb = fc
      .uniqueArray(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g'), { minLength: 1 })
      .chain((ids) =>
        fc.tuple(
          fc.tuple(...ids.map((id) => fc.record({ callId: fc.constant(id), parentCallId: fc.option(fc.constantFrom('a', 'b', 'c', 'd', 'e', 'f', 'g', 'x'), { nil: null }) }))),
          fc.infiniteStream(fc.nat()),
        ),
      );
    fc.assert(
      fc.property(linksArb, ([links, stream]) => {
        const rnd = stream[Symbol.iterator]();
        const shuffled = [...links].sort(() => (rnd.next().value! % 3) - 1);
        const a = resolveRoots(links);
        expect(Object.fromEntries(resolveRoots(shuffled))).toEqual(Object.fromEntries(a));
        expect(a.size).toBe(links.length);
        for (const { rootCallId, depth } of a.values()) {
          expect(a.get(rootCallId)).toEqual({ rootCallId, depth: 0 });
          expect(depth).toBeLessThan(links.length);
        }
        const forest = buildCallForest(links.map((l) => row(l.callId, l.parentCallId)));
        const count = (n: CallTreeNode): number => 1 + n.children.reduce((s, c) => s + count(c), 0);
        expect(forest.reduce((s, n) => s + count(n), 0)).toBe(links.length);
      }),
      { numRuns: 200 },
    );
  });
});
