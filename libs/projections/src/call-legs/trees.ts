import { sql, type Transaction } from 'kysely';
import type { DB } from '@lib/db';
import type { Provider } from '@lib/ledger';
import { legs, recs } from './schema.js';

/**
 * How far the walks go up and down a tree. The hop limit is what ends a walk up a cycle of parent links; any limit
 * also cuts a tree deeper than it, and where it is cut then depends on which legs a batch walked from, so live and
 * rebuilt read models differ below it. At 32 (before) a chain of 40 legs, a forwarding loop's length, was already
 * cut (a leg 33 levels down took the leg 32 above it as its root); a call tree 1,000 levels deep is not one a
 * provider makes (SIP's Max-Forwards starts at 70), and a walk costs per level actually present, not per level
 * allowed, so the limit costs nothing for real trees.
 */
export const MAX_TREE_DEPTH = 1000;

/**
 * How far a walk that reached MAX_TREE_DEPTH (a cycle, or a tree deeper than the limit) is followed again to find
 * its cycle. Each row of that walk carries the ids passed, so its cost grows with the square of its length: bounded
 * here, a cycle (with the legs leading into it) longer than this falls back to the walk's topmost leg as its root.
 */
export const CYCLE_SEARCH_HOPS = 64;

/**
 * Root = topmost known ancestor. Walk up from every touched leg, then down from each root so that a parent
 * arriving after its children (or a late link) re-roots the whole subtree. Hop limits break cycles.
 */
export const healTrees = async (
  trx: Transaction<DB>,
  g: number,
  rows: readonly { provider: Provider; callId: string; parentCallId?: string | null }[],
  /** False when no recording was written since the legs' roots were last right: the second pass has nothing to fix. */
  recordingsWritten = true,
  /**
   * Legs of `rows` just inserted by this batch (no row before it). One of them without a parent was inserted as its own
   * root at depth 0, which is already its place: it needs the walk only if legs below it arrived first (a child
   * names it as parent), which one probe of the parent index answers. Most live batches' new legs are such roots.
   */
  inserted: (leg: { provider: Provider; callId: string }) => boolean = () => false,
) => {
  const T = legs(g);
  const roots = rows.filter((r) => r.parentCallId === null && inserted(r));
  const walk = rows.filter((r) => !(r.parentCallId === null && inserted(r)));
  // Not PREPARED (libs/db database.ts): a generic plan made while the legs table was small kept its scans as the table
  // grew (ingest compare with pg_stat_statements: 27 ms a call against 2.6 ms planned each time).
  // The new roots are a semi-join of their own (a plain EXISTS, one probe each), not an OR beside the other legs.
  await sql`
    WITH RECURSIVE start AS (
      SELECT t.p, t.c FROM unnest(${walk.map((r) => r.provider)}::text[], ${walk.map((r) => r.callId)}::text[]) AS t(p, c)
      UNION ALL
      SELECT t.p, t.c FROM unnest(${roots.map((r) => r.provider)}::text[], ${roots.map((r) => r.callId)}::text[]) AS t(p, c)
      WHERE EXISTS (SELECT 1 FROM ${T} k WHERE k.provider = t.p AND k.parent_call_id = t.c AND k.call_id <> t.c)
    ), up AS (
      SELECT l.provider, l.call_id, l.parent_call_id, l.call_id AS start, 0 AS hops
      FROM ${T} l JOIN start t ON l.provider = t.p AND l.call_id = t.c
      UNION ALL
      SELECT l.provider, l.call_id, l.parent_call_id, up.start, up.hops + 1
      FROM ${T} l JOIN up ON l.provider = up.provider AND l.call_id = up.parent_call_id
      WHERE up.hops < ${MAX_TREE_DEPTH}
    ), ends AS (
      SELECT DISTINCT ON (provider, start) provider, start, call_id, hops FROM up ORDER BY provider, start, hops DESC, call_id
    ), circled AS (
      -- A walk that reached the limit went round a cycle of parent links (or up a tree deeper than the limit). Those
      -- walks alone go again carrying the ids they passed (an array per row: kept off the walks of ordinary trees, and
      -- at most CYCLE_SEARCH_HOPS long): one that comes back to a leg it passed has found the cycle, whose member with
      -- the smallest call id is the root (the pure rule's, libs/ledger call-tree.ts) whichever leg the walk started
      -- from, so that live batches and a rebuild agree.
      SELECT l.provider, l.call_id, l.parent_call_id, l.call_id AS start, 0 AS hops, ARRAY[l.call_id] AS path, false AS cycle
      FROM ${T} l JOIN ends e ON e.hops = ${MAX_TREE_DEPTH} AND l.provider = e.provider AND l.call_id = e.start
      UNION ALL
      SELECT l.provider, l.call_id, l.parent_call_id, c.start, c.hops + 1, c.path || l.call_id, l.call_id = ANY (c.path)
      FROM ${T} l JOIN circled c ON l.provider = c.provider AND l.call_id = c.parent_call_id
      WHERE c.hops < ${CYCLE_SEARCH_HOPS} AND NOT c.cycle
    ), roots AS (
      SELECT e.provider, coalesce(
        (SELECT min(m COLLATE "C") FROM circled c CROSS JOIN LATERAL unnest(c.path[array_position(c.path, c.call_id):]) AS m
         WHERE c.cycle AND c.provider = e.provider AND c.start = e.start),
        e.call_id) AS root
      FROM ends e
    ), down AS (
      SELECT l.provider, l.call_id, l.call_id AS root, 0 AS depth, l.root_call_id AS was_root, l.depth AS was_depth
      FROM ${T} l JOIN (SELECT DISTINCT provider, root FROM roots) r ON l.provider = r.provider AND l.call_id = r.root
      UNION ALL
      SELECT l.provider, l.call_id, down.root, down.depth + 1, l.root_call_id, l.depth
      FROM ${T} l JOIN down ON l.provider = down.provider AND l.parent_call_id = down.call_id AND l.call_id <> down.root
      WHERE down.depth < ${MAX_TREE_DEPTH}
    ), best AS (
      SELECT DISTINCT ON (provider, call_id) provider, call_id, root, depth, was_root, was_depth FROM down ORDER BY provider, call_id, depth DESC
    ), moved AS (
      -- The walk read each leg's root and depth as they stand: only legs whose place changes are looked up again to
      -- be written (mostly none: one primary-key probe per walked leg was most of this statement's time).
      UPDATE ${T} l SET root_call_id = best.root, depth = best.depth FROM best
      WHERE (best.was_root IS DISTINCT FROM best.root OR best.was_depth IS DISTINCT FROM best.depth)
        AND l.provider = best.provider AND l.call_id = best.call_id
      RETURNING l.provider, l.call_id, best.root
    )
    UPDATE ${recs(g)} r SET root_call_id = moved.root FROM moved
    WHERE r.provider = moved.provider AND r.call_id = moved.call_id AND r.root_call_id IS DISTINCT FROM moved.root`.execute(trx);
  // Recordings of legs whose root did not move but whose recordings were just rewritten start at their own id.
  if (!recordingsWritten) return;
  await sql`
    UPDATE ${recs(g)} r SET root_call_id = l.root_call_id FROM ${T} l
    JOIN unnest(${rows.map((x) => x.provider)}::text[], ${rows.map((x) => x.callId)}::text[]) AS t(p, c) ON l.provider = t.p AND l.call_id = t.c
    WHERE r.provider = l.provider AND r.call_id = l.call_id AND r.root_call_id IS DISTINCT FROM l.root_call_id`.execute(trx);
};

/**
 * Roots and depths of a whole generation: down from every leg with no (known) parent. Legs that walk finds
 * nothing for (parent links that form a cycle) go through the incremental rule, as they would live.
 */
export const healAllTrees = async (trx: Transaction<DB>, g: number) => {
  const T = legs(g);
  // Legs are inserted as their own root at depth 0, which is already right for every root and for every leg
  // whose parent is unknown; so the walk starts only from roots that have children, and only rewrites
  // descendants. Each leg has one parent, so the walk reaches a leg at most once and needs no de-duplication.
  await sql`
    WITH RECURSIVE down AS (
      SELECT l.provider, l.call_id, l.call_id AS root, 0 AS depth FROM ${T} l
      WHERE (l.parent_call_id IS NULL
          OR NOT EXISTS (SELECT 1 FROM ${T} p WHERE p.provider = l.provider AND p.call_id = l.parent_call_id))
        AND EXISTS (SELECT 1 FROM ${T} c WHERE c.provider = l.provider AND c.parent_call_id = l.call_id AND c.call_id <> l.call_id)
      UNION ALL
      SELECT l.provider, l.call_id, down.root, down.depth + 1
      FROM ${T} l JOIN down ON l.provider = down.provider AND l.parent_call_id = down.call_id AND l.call_id <> down.root
      WHERE down.depth < ${MAX_TREE_DEPTH}
    )
    UPDATE ${T} l SET root_call_id = down.root, depth = down.depth FROM down
    WHERE down.depth > 0 AND l.provider = down.provider AND l.call_id = down.call_id
      AND (l.root_call_id IS DISTINCT FROM down.root OR l.depth IS DISTINCT FROM down.depth)`.execute(trx);
  const cyclic = await sql<{ provider: Provider; call_id: string }>`
    SELECT l.provider, l.call_id FROM ${T} l
    WHERE l.depth = 0 AND l.parent_call_id IS NOT NULL AND l.parent_call_id <> l.call_id
      AND EXISTS (SELECT 1 FROM ${T} p WHERE p.provider = l.provider AND p.call_id = l.parent_call_id)`.execute(trx);
  if (cyclic.rows.length > 0) await healTrees(trx, g, cyclic.rows.map((r) => ({ provider: r.provider, callId: r.call_id })));
  await sql`
    UPDATE ${recs(g)} r SET root_call_id = l.root_call_id FROM ${T} l
    WHERE r.provider = l.provider AND r.call_id = l.call_id AND r.root_call_id IS DISTINCT FROM l.root_call_id`.execute(trx);
};
