/**
 * Call trees from call-leg rows (pure). The parent relation is the rows' parentCallId, followed only within the
 * given set: a leg whose parent is not in the set is a root of what is known (root = topmost known ancestor).
 * Results never depend on the order of the input.
 */
import type { CallLegRow } from './call-leg.js';

export interface CallTreeNode extends CallLegRow {
  rootCallId: string;
  depth: number;
  children: CallTreeNode[];
}

type LinkRow = Pick<CallLegRow, 'callId' | 'parentCallId'>;

const cmp = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * Effective parent of each callId within the set. A callId listed twice keeps its smallest non-null parent.
 * Self-links and parents outside the set count as "no parent". Cycles are broken deterministically: on every
 * cycle the member with the smallest callId drops its parent link and becomes the root.
 */
const effectiveParents = (legs: readonly LinkRow[]): Map<string, string | null> => {
  const parent = new Map<string, string | null>();
  for (const leg of legs) {
    const current = parent.get(leg.callId);
    const candidate = leg.parentCallId && leg.parentCallId !== leg.callId ? leg.parentCallId : null;
    if (current === undefined) parent.set(leg.callId, candidate);
    else if (candidate !== null && (current === null || cmp(candidate, current) < 0)) parent.set(leg.callId, candidate);
  }
  for (const [id, p] of parent) if (p !== null && !parent.has(p)) parent.set(id, null);

  // Cycle breaking: walk from every node (in sorted order); a walk that meets a node of the current walk found a cycle.
  const state = new Map<string, 'active' | 'done'>();
  for (const start of [...parent.keys()].sort(cmp)) {
    const path: string[] = [];
    let node: string | null = start;
    while (node !== null && !state.has(node)) {
      state.set(node, 'active');
      path.push(node);
      node = parent.get(node) ?? null;
    }
    if (node !== null && state.get(node) === 'active') {
      const cycle = path.slice(path.indexOf(node));
      const root = [...cycle].sort(cmp)[0]!;
      parent.set(root, null);
    }
    for (const p of path) state.set(p, 'done');
  }
  return parent;
};

/** callId -> its root (topmost known ancestor) and depth below it (root = 0). */
export function resolveRoots(legs: readonly LinkRow[]): Map<string, { rootCallId: string; depth: number }> {
  const parent = effectiveParents(legs);
  const out = new Map<string, { rootCallId: string; depth: number }>();
  const resolve = (id: string): { rootCallId: string; depth: number } => {
    const done = out.get(id);
    if (done) return done;
    // Iterative walk up to the first resolved ancestor or the root (the parent map is acyclic now).
    const chain: string[] = [];
    let node = id;
    let base: { rootCallId: string; depth: number } | undefined;
    for (;;) {
      const known = out.get(node);
      if (known) {
        base = known;
        break;
      }
      chain.push(node);
      const p = parent.get(node) ?? null;
      if (p === null) break;
      node = p;
    }
    let current = base ?? { rootCallId: chain.at(-1)!, depth: -1 };
    for (const n of chain.reverse()) {
      current = { rootCallId: current.rootCallId, depth: current.depth + 1 };
      out.set(n, current);
    }
    return out.get(id)!;
  };
  for (const id of [...parent.keys()].sort(cmp)) resolve(id);
  return out;
}

const startedKey = (leg: CallLegRow): number => {
  const ms = leg.startedAt ? Date.parse(leg.startedAt) : Number.NaN;
  return Number.isNaN(ms) ? Number.POSITIVE_INFINITY : ms;
};

/** Sibling (and root) order: startedAt ascending with nulls last, then callId. */
export const compareLegsForTree = (a: CallLegRow, b: CallLegRow): number => {
  const ka = startedKey(a);
  const kb = startedKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : cmp(a.callId, b.callId);
};

/**
 * Every tree in the set, roots ordered: true roots (parentCallId null) before orphans whose parent is not in the
 * set, then startedAt (nulls last), then callId. A callId listed twice is kept once (the row whose
 * lastPosition is highest, then the greater JSON, so the choice does not depend on input order).
 */
export function buildCallForest(legs: readonly CallLegRow[]): CallTreeNode[] {
  const rows = new Map<string, CallLegRow>();
  for (const leg of legs) {
    const current = rows.get(leg.callId);
    if (!current || preferRow(leg, current)) rows.set(leg.callId, leg);
  }
  const roots = resolveRoots([...rows.values()]);
  const parent = effectiveParents([...rows.values()]);
  const nodes = new Map<string, CallTreeNode>();
  for (const row of rows.values()) {
    const r = roots.get(row.callId)!;
    nodes.set(row.callId, { ...row, recordings: [...row.recordings], conferenceIds: [...row.conferenceIds], rootCallId: r.rootCallId, depth: r.depth, children: [] });
  }
  const top: CallTreeNode[] = [];
  for (const node of nodes.values()) {
    const p = parent.get(node.callId) ?? null;
    if (p === null) top.push(node);
    else nodes.get(p)!.children.push(node);
  }
  for (const node of nodes.values()) node.children.sort(compareLegsForTree);
  return top.sort((a, b) => Number(a.parentCallId !== null) - Number(b.parentCallId !== null) || compareLegsForTree(a, b));
}

/**
 * The tree of one call: takes all legs of one tree and returns its root node, children sorted by startedAt
 * (nulls last) then callId. If the set holds more than one tree (e.g. a parent not yet known), the first root of
 * buildCallForest is returned and the other trees are not part of the result. Throws on an empty set.
 */
export function buildCallTree(legs: readonly CallLegRow[]): CallTreeNode {
  const [root] = buildCallForest(legs);
  if (!root) throw new RangeError('buildCallTree needs at least one leg');
  return root;
}

const preferRow = (candidate: CallLegRow, current: CallLegRow): boolean => {
  const a = toBigInt(candidate.lastPosition);
  const b = toBigInt(current.lastPosition);
  if (a !== b) return a > b;
  return JSON.stringify(candidate) > JSON.stringify(current);
};

const toBigInt = (value: string): bigint => {
  try {
    return BigInt(value);
  } catch {
    return -1n;
  }
};
