import { sql, type RawBuilder, type Transaction } from 'kysely';
import type { DB } from '@lib/db';
import { coarsen, TALK_BUCKETS, TALK_EDGES, type Provider, type RollupCell, type RollupLeg, type rollupDelta } from '@lib/ledger';
import { FINE, legs, names, ROLLUPS, sameCell, type RollupSpec } from './schema.js';

/** The histogram edges as a SQL array literal, for `width_bucket(seconds, edges)` (same buckets as talkBucket). */
export const TALK_EDGES_SQL = sql.raw(`'{${TALK_EDGES.join(',')}}'::float8[]`);

/** A leg as stored before this batch rewrites it: its rollup contribution, and the tag of its live fold state (fold-cache.ts). */
export type StoredLeg = RollupLeg & { callId: string; foldSeq: string | null };

/** The legs as stored before this batch rewrites them (one primary-key probe each, whatever the table's size). */
export const currentLegs = async (trx: Transaction<DB>, g: number, rows: readonly { provider: Provider; callId: string }[]): Promise<StoredLeg[]> => {
  const r = await sql<{
    provider: Provider; call_id: string; account_id: string | null; parent_call_id: string | null; direction: RollupLeg['direction'];
    status: RollupLeg['status']; started_at: Date | null; talk_duration_sec: number | null;
    ring_duration_sec: number | null; answered_by: RollupLeg['answeredBy']; fold_seq: string | null;
  }>`
    SELECT l.provider, l.call_id, l.account_id, l.parent_call_id, l.direction, l.status, l.started_at,
      l.talk_duration_sec, l.ring_duration_sec, l.answered_by, l.fold_seq::text AS fold_seq
    FROM unnest(${rows.map((x) => x.provider)}::text[], ${rows.map((x) => x.callId)}::text[]) AS t(p, c)
    CROSS JOIN LATERAL (SELECT * FROM ${legs(g)} l WHERE l.provider = t.p AND l.call_id = t.c LIMIT 1) l`.execute(trx);
  return r.rows.map((x) => ({
    provider: x.provider, callId: x.call_id, accountId: x.account_id, parentCallId: x.parent_call_id, direction: x.direction,
    status: x.status, startedAt: x.started_at?.toISOString() ?? null,
    talkDurationSec: x.talk_duration_sec, ringDurationSec: x.ring_duration_sec, answeredBy: x.answered_by, foldSeq: x.fold_seq,
  }));
};

/**
 * Several data-modifying statements as one (`WITH s0 AS (...), s1 AS (...) <last>`): one round trip, one parse and
 * plan, instead of one each. They all see the same snapshot, so each must touch rows that none of the others touches
 * or reads back (PostgreSQL would apply only one of two changes to one row).
 */
export const together = (statements: readonly RawBuilder<unknown>[]): RawBuilder<unknown> | null => {
  if (statements.length === 0) return null;
  if (statements.length === 1) return statements[0]!;
  const ctes = statements.slice(0, -1).map((s, i) => sql`${sql.raw(`s${i}`)} AS (${s})`);
  return sql`WITH ${sql.join(ctes)} ${statements.at(-1)!}`;
};

type Delta = ReturnType<typeof rollupDelta>;
// Each coarse rollup's cells, once per batch's delta (the upserts and rollupFinish both ask for them).
const coarsened = new WeakMap<Delta, Map<RollupSpec, Delta>>();
const cellsOf = (spec: RollupSpec, fine: Delta): Delta => {
  if (spec === FINE) return fine;
  let bySpec = coarsened.get(fine);
  if (!bySpec) coarsened.set(fine, (bySpec = new Map()));
  let cells = bySpec.get(spec);
  if (!cells) bySpec.set(spec, (cells = coarsen(fine, spec.columns.map((c) => c.of))));
  return cells;
};
const specKey = (spec: RollupSpec, cell: RollupCell) => JSON.stringify(spec.columns.map((c) => c.of(cell)));

/**
 * Adds the net change per cell, one statement per rollup (different tables: run together, and with the legs'
 * upsert). Cells this leaves with no legs are removed by rollupFinish, so live rollups equal rebuilt ones row for row.
 */
export const rollupUpserts = (g: number, fine: Delta): RawBuilder<unknown>[] =>
  ROLLUPS.flatMap((spec) => {
    const cells = cellsOf(spec, fine);
    if (cells.length === 0) return [];
    const T = sql.table(spec.table(g));
    const col = <T>(f: (c: (typeof cells)[number]) => T) => cells.map(f);
    const keys = sql.join(spec.columns.map((c) => sql`${col((x) => c.of(x.cell))}::${sql.raw(c.type)}[]`));
    const order = sql.raw(spec.columns.map((_, i) => String(i + 1)).join(', '));
    return [sql`
      INSERT INTO ${T} AS h (${names(spec)}, legs, talk_ms, ring_ms, ring_n, machine, talk_hist)
      SELECT ${names(spec, 't.')}, t.legs, t.talk_ms, t.ring_ms, t.ring_n, t.machine, t.hist::bigint[]
      FROM unnest(${keys}, ${col((c) => c.delta.legs)}::bigint[], ${col((c) => c.delta.talkMs)}::bigint[], ${col((c) => c.delta.ringMs)}::bigint[],
        ${col((c) => c.delta.ringN)}::bigint[], ${col((c) => c.delta.machine)}::bigint[], ${col((c) => `{${c.delta.talkHistogram.join(',')}}`)}::text[])
        AS t(${names(spec)}, legs, talk_ms, ring_ms, ring_n, machine, hist)
      ORDER BY ${order}
      ON CONFLICT (${names(spec)}) DO UPDATE SET
        legs = h.legs + EXCLUDED.legs, talk_ms = h.talk_ms + EXCLUDED.talk_ms, ring_ms = h.ring_ms + EXCLUDED.ring_ms,
        ring_n = h.ring_n + EXCLUDED.ring_n, machine = h.machine + EXCLUDED.machine,
        talk_hist = ARRAY(SELECT a + b FROM unnest(h.talk_hist, EXCLUDED.talk_hist) AS u(a, b))`];
  });

/**
 * What follows the upserts, per rollup: cells left with no legs deleted; the talk extremes of completed legs entering
 * cells taken in (least/greatest ignore the nulls of a new cell); those of cells a completed leg left, or in which its
 * talk changed, recomputed from their legs when the talk that left was one of the cell's extremes (a narrowing cannot
 * be taken back like a sum), and otherwise only widened by what entered. Disjoint rows, so one statement: a deleted
 * cell has no legs, a widened one has the completed leg that entered it, and a cell a leg left is not widened too
 * (its recomputation reads the legs as they now are, entering ones included).
 */
export const rollupFinish = (
  g: number,
  fine: Delta,
  entered: readonly { cell: RollupCell; ms: number }[],
  left: readonly { cell: RollupCell; ms: number }[],
): RawBuilder<unknown>[] =>
  ROLLUPS.flatMap((spec) => {
    const out: RawBuilder<unknown>[] = [];
    const T = sql.table(spec.table(g));
    // Only a cell that lost legs can have none left.
    const emptied = cellsOf(spec, fine).filter((c) => c.delta.legs < 0);
    if (emptied.length > 0) {
      const emptiedKeys = sql.join(spec.columns.map((c) => sql`${emptied.map((x) => c.of(x.cell))}::${sql.raw(c.type)}[]`));
      out.push(sql`
        DELETE FROM ${T} h USING unnest(${emptiedKeys}) AS t(${names(spec)})
        WHERE h.legs = 0 AND ${sql.raw(spec.columns.map((c) => `h.${c.name} IS NOT DISTINCT FROM t.${c.name}`).join(' AND '))}`);
    }
    // Per cell a leg left: the least and greatest talk that left it, and what entered it in the same batch.
    const leaving = talkRanges(spec, left);
    const entering = talkRanges(spec, entered);
    const recomputed: LeftCell[] = [...leaving].map(([k, l]) => ({
      cell: l.cell, leftMin: l.mn, leftMax: l.mx, enteredMin: entering.get(k)?.mn ?? null, enteredMax: entering.get(k)?.mx ?? null,
    }));
    const widened = widen(spec, g, [...entering].filter(([k]) => !leaving.has(k)).map(([, e]) => e));
    if (widened) out.push(widened);
    if (recomputed.length > 0) out.push(recompute(spec, g, recomputed));
    return out;
  });

/** Per cell of `spec`: the least and greatest talk (ms) among the given legs'. */
const talkRanges = (spec: RollupSpec, legsIn: readonly { cell: RollupCell; ms: number }[]): Map<string, { cell: RollupCell; mn: number; mx: number }> => {
  const byCell = new Map<string, { cell: RollupCell; mn: number; mx: number }>();
  for (const { cell, ms } of legsIn) {
    const k = specKey(spec, cell);
    const e = byCell.get(k);
    if (e) {
      e.mn = Math.min(e.mn, ms);
      e.mx = Math.max(e.mx, ms);
    } else byCell.set(k, { cell, mn: ms, mx: ms });
  }
  return byCell;
};

const widen = (spec: RollupSpec, g: number, cells: readonly { cell: RollupCell; mn: number; mx: number }[]): RawBuilder<unknown> | null => {
  if (cells.length === 0) return null;
  const keys = sql.join(spec.columns.map((c) => sql`${cells.map((x) => c.of(x.cell))}::${sql.raw(c.type)}[]`));
  return sql`
    UPDATE ${sql.table(spec.table(g))} h SET talk_min_ms = least(h.talk_min_ms, t.mn), talk_max_ms = greatest(h.talk_max_ms, t.mx)
    FROM unnest(${keys}, ${cells.map((c) => c.mn)}::bigint[], ${cells.map((c) => c.mx)}::bigint[]) AS t(${names(spec)}, mn, mx)
    WHERE ${sameCell(spec, 'h', 't')}
      AND (h.talk_min_ms IS DISTINCT FROM least(h.talk_min_ms, t.mn) OR h.talk_max_ms IS DISTINCT FROM greatest(h.talk_max_ms, t.mx))`;
};

interface LeftCell {
  cell: RollupCell;
  /** The least and greatest talk (ms) of the completed legs that left the cell or changed their talk in it. */
  leftMin: number;
  leftMax: number;
  /** The least and greatest talk of the completed legs that entered it in the same batch (null: none). */
  enteredMin: number | null;
  enteredMax: number | null;
}

/**
 * talk_min_ms / talk_max_ms of the given cells. A cell whose stored extremes lie strictly outside every talk that
 * left it keeps them, widened by what entered: removing a value strictly between the least and the greatest moves
 * neither. Only a cell whose least or greatest may have left is recomputed from the legs in it (same rounding as
 * talk_ms), one lookup per cell through the start-time index: the period's range for a cell with a start,
 * `started_at IS NULL` for the cell of legs with no start (an OR of the two in one join made PostgreSQL scan every
 * leg for every batch). That lookup reads every leg of the cell's period: a day's legs for the daily rollup, which at
 * a steady 200 calls a second is millions by evening, so it must stay the exception (the scan is under a condition
 * of the outer row, which PostgreSQL checks once before the index scan). A cell with no legs left is not touched
 * (rollupFinish deletes it).
 */
const recompute = (spec: RollupSpec, g: number, left: readonly LeftCell[]): RawBuilder<unknown> => {
  const cells = left.map((x) => x.cell);
  const keys = sql.join([
    ...spec.columns.map((c) => sql`${cells.map((x) => c.of(x))}::${sql.raw(c.type)}[]`),
    sql`${left.map((x) => x.leftMin)}::bigint[]`,
    sql`${left.map((x) => x.leftMax)}::bigint[]`,
    sql`${left.map((x) => x.enteredMin)}::bigint[]`,
    sql`${left.map((x) => x.enteredMax)}::bigint[]`,
  ]);
  const [period, ...dims] = spec.columns;
  const at = `t.${period!.name}`;
  const others = dims
    .map((c) => (c.name === 'is_root' ? `(l.parent_call_id IS NULL) = t.is_root` : c.nullable ? `l.${c.name} IS NOT DISTINCT FROM t.${c.name}` : `l.${c.name} = t.${c.name}`))
    .join(' AND ');
  // An aggregate answers one row even when nothing matches: each cell goes through exactly one of the two branches.
  // `kept`: every talk that left lies strictly between the cell's stored extremes (false when they are null).
  const kept = 'coalesce(t.left_min > c.talk_min_ms AND t.left_max < c.talk_max_ms, false)';
  const extremes = (which: string, hour: string) => sql`
    SELECT ${names(spec, 't.')},
      CASE WHEN ${sql.raw(kept)} THEN least(c.talk_min_ms, t.entered_min) ELSE m.mn END AS mn,
      CASE WHEN ${sql.raw(kept)} THEN greatest(c.talk_max_ms, t.entered_max) ELSE m.mx END AS mx
    FROM unnest(${keys}) AS t(${names(spec)}, left_min, left_max, entered_min, entered_max)
    JOIN ${sql.table(spec.table(g))} c ON ${sameCell(spec, 'c', 't')}
    CROSS JOIN LATERAL (
      SELECT min(floor(coalesce(l.talk_duration_sec, 0) * 1000 + 0.5))::bigint AS mn, max(floor(coalesce(l.talk_duration_sec, 0) * 1000 + 0.5))::bigint AS mx
      FROM ${legs(g)} l WHERE NOT ${sql.raw(kept)} AND ${sql.raw(hour)} AND ${sql.raw(others)}
    ) m
    WHERE ${sql.raw(which)}`;
  return sql`
    UPDATE ${sql.table(spec.table(g))} h SET talk_min_ms = x.mn, talk_max_ms = x.mx
    FROM (
      SELECT * FROM (${extremes(`${at} IS NOT NULL`, `l.started_at >= ${at} AND l.started_at < ${at} + interval '${spec.period.length}'`)}) a
      UNION ALL
      SELECT * FROM (${extremes(`${at} IS NULL`, 'l.started_at IS NULL')}) b
    ) x
    WHERE ${sameCell(spec, 'h', 'x')} AND h.legs <> 0 AND (h.talk_min_ms IS DISTINCT FROM x.mn OR h.talk_max_ms IS DISTINCT FROM x.mx)`;
};

/**
 * One rollup of a whole generation in one statement (end of a bulk load). Must agree with addLeg in
 * libs/ledger/src/leg-rollup.ts: same millisecond rounding, same histogram buckets.
 * One pass: legs are first summed per (cell, talk bucket), which every measure allows (sums, counts, min, max), and
 * the cell's histogram is spelled as array text from its few non-empty buckets (zeros between them by `repeat`).
 * It replaces a join of two aggregates whose histogram looked up each of the 91 buckets in a jsonb object per cell
 * (12 s of a 67 s rebuild at 100,000 legs); GROUP BY treats nulls as equal, so no null-safe join is needed either.
 */
export const rollupsFromScratch = async (trx: Transaction<DB>, g: number, spec: RollupSpec) => {
  const cell = names(spec);
  const [period, ...dims] = spec.columns;
  const rest = sql.raw(dims.map((c) => (c.name === 'is_root' ? 'parent_call_id IS NULL AS is_root' : c.name)).join(', '));
  await sql`
    WITH l AS (
      SELECT date_trunc(${spec.period.unit}, started_at, 'UTC') AS ${sql.raw(period!.name)}, ${rest},
        coalesce(talk_duration_sec, 0) AS talk, ring_duration_sec AS ring, answered_by
      FROM ${legs(g)}
    ), b AS (
      SELECT ${cell}, width_bucket(talk, ${TALK_EDGES_SQL}) AS b, count(*) AS n,
        sum(floor(talk * 1000 + 0.5)) AS talk_ms, sum(floor(ring * 1000 + 0.5)) AS ring_ms, count(ring) AS ring_n,
        count(*) FILTER (WHERE answered_by IN ('machine', 'fax')) AS machine,
        min(floor(talk * 1000 + 0.5)) FILTER (WHERE status = 'completed') AS mn,
        max(floor(talk * 1000 + 0.5)) FILTER (WHERE status = 'completed') AS mx
      FROM l GROUP BY ${cell}, width_bucket(talk, ${TALK_EDGES_SQL})
    ), p AS (
      SELECT b.*, lag(b.b, 1, -1) OVER (PARTITION BY ${cell} ORDER BY b.b) AS prev FROM b
    )
    INSERT INTO ${sql.table(spec.table(g))} (${cell}, legs, talk_ms, ring_ms, ring_n, machine, talk_hist, talk_min_ms, talk_max_ms)
    SELECT ${cell}, sum(n), sum(talk_ms)::bigint, coalesce(sum(ring_ms), 0)::bigint, sum(ring_n), sum(machine),
      ('{' || string_agg(repeat('0,', b - prev - 1) || n, ',' ORDER BY b) || repeat(',0', ${TALK_BUCKETS - 1}::int - max(b)) || '}')::bigint[],
      min(mn)::bigint, max(mx)::bigint
    FROM p GROUP BY ${cell}`.execute(trx);
};
