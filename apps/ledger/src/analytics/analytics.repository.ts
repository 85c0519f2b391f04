import { Inject, Injectable } from '@nestjs/common';
import { sql, type RawBuilder } from 'kysely';
import { Database } from '@lib/db';
import { READ_DATABASE } from '../common/tokens.js';
import { addKpiTotals, emptyKpiTotals, isTerminalStatus, type KpiTotals, type LegStatus } from '@lib/ledger';
import { TALK_EDGES_SQL } from '@lib/projections';
import { callFilterSql, TERMINAL_STATUSES, withNumberGrams, type CallFilters } from '../calls/calls.repository.js';
import type { GroupBy } from './analytics.dto.js';

const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/** Which sources may answer; every combination gives the same figures (tests compare them). */
export interface AnalyticsSources {
  /** The per-day coarse rollup for the whole UTC days of a window (default true). */
  daily?: boolean;
  /** Any rollup at all; false sums the legs themselves (default true). */
  rollups?: boolean;
}

interface CellRow {
  k: unknown;
  status: LegStatus;
  legs: string;
  talk_ms: string;
  ring_ms: string;
  ring_n: string;
  machine: string;
  talk_min_ms: string | null;
  talk_max_ms: string | null;
}

/** Group key as the API shows it: ISO-8601 for periods, the value otherwise. */
const keyOf = (k: unknown): string | null => (k === null || k === undefined ? null : k instanceof Date ? k.toISOString() : String(k));

/** The group key over a rollup's cells; `period` is the rollup's period column (hour, or day for the daily one). */
const rollupKey = (g: GroupBy | null, period: 'hour' | 'day'): RawBuilder<unknown> => {
  switch (g) {
    case null: return sql`NULL::text`;
    case 'provider': return sql`h.provider`;
    case 'accountId': return sql`h.account_id`;
    case 'direction': return sql`h.direction`;
    case 'status': return sql`h.status`;
    case 'day': return period === 'day' ? sql`h.day` : sql`date_trunc('day', h.hour, 'UTC')`;
    case 'hour':
      if (period === 'hour') return sql`h.hour`;
      throw new Error('a daily cell has no hour');
    default: throw new Error(`group ${g} is not in the rollups`);
  }
};

const legKey = (g: GroupBy | null): RawBuilder<unknown> => {
  switch (g) {
    case null: return sql`NULL::text`;
    case 'provider': return sql`l.provider`;
    case 'accountId': return sql`l.account_id`;
    case 'direction': return sql`l.direction`;
    case 'status': return sql`l.status`;
    case 'from': return sql`l.from_number`;
    case 'to': return sql`l.to_number`;
    case 'day': return sql`date_trunc('day', l.started_at, 'UTC')`;
    case 'hour': return sql`date_trunc('hour', l.started_at, 'UTC')`;
  }
};

const and = (parts: RawBuilder<unknown>[]) => (parts.length ? sql.join(parts, sql` AND `) : sql`true`);

/**
 * KPI totals per group, read from the projection's rollups wherever they can answer (whole hours, filters
 * the rollup cells carry; the coarse provider-status rollups when nothing finer is asked, by day for a window's whole
 * UTC days and by hour for the hours around them) and from the legs themselves for the rest: the partial hours at the edges of a
 * since/until window, and the filters and groupings a cell does not carry (from, to, numberContains, final, verification). Both sources give
 * the same integer totals (libs/ledger/src/kpis.ts), so where a figure comes from does not change it.
 */
@Injectable()
export class AnalyticsRepository {
  constructor(@Inject(READ_DATABASE) private readonly db: Database) {}

  /**
   * Whether the daily rollup is published. A store upgraded from projection version 4 serves its old generation,
   * which has none, until the version's rebuild switches over; once there it stays, so a yes is remembered.
   */
  private dailyPublished = false;
  private async hasDailyRollup(): Promise<boolean> {
    if (this.dailyPublished) return true;
    const r = await sql<{ ok: boolean }>`SELECT to_regclass('call_provider_daily') IS NOT NULL AS ok`.execute(this.db);
    this.dailyPublished = r.rows[0]?.ok === true;
    return this.dailyPublished;
  }

  async totalsByGroup(filters: CallFilters, groupBy: GroupBy | null, sources: AnalyticsSources = {}): Promise<Map<string | null, KpiTotals>> {
    const out = new Map<string | null, KpiTotals>();
    // verification is not a rollup dimension: a filter on it is an audit question, rare enough to scan the legs for.
    // Nor are machine detection and number substrings; `attempt` is a set of statuses, which the cells do carry.
    const rollupsCan =
      !filters.from && !filters.to && filters.final === undefined && !filters.verification && !filters.answeredBy && !filters.numberContains &&
      groupBy !== 'from' && groupBy !== 'to';
    if (!rollupsCan || sources.rollups === false) {
      await this.fromLegs(filters, groupBy, out);
      return out;
    }
    const since = filters.since ? Date.parse(filters.since) : null;
    const until = filters.until ? Date.parse(filters.until) : null;
    const h1 = since === null ? null : Math.ceil(since / HOUR_MS) * HOUR_MS;
    const h2 = until === null ? null : Math.floor(until / HOUR_MS) * HOUR_MS;
    if (h1 !== null && h2 !== null && h1 >= h2) {
      await this.fromLegs(filters, groupBy, out);
      return out;
    }
    await this.fromRollups(filters, groupBy, h1, h2, out, (sources.daily ?? true) && (await this.hasDailyRollup()));
    const iso = (ms: number) => new Date(ms).toISOString();
    if (since !== null && h1! > since) await this.fromLegs({ ...filters, since: filters.since, until: iso(h1!) }, groupBy, out);
    if (until !== null && h2! < until) await this.fromLegs({ ...filters, since: iso(h2!), until: filters.until }, groupBy, out);
    return out;
  }

  private async fromRollups(
    f: CallFilters, groupBy: GroupBy | null, h1: number | null, h2: number | null, out: Map<string | null, KpiTotals>, daily: boolean,
  ) {
    // The coarse rollups (provider, status) answer whenever nothing finer is asked for: far fewer rows.
    const coarse = !f.accountId && !f.direction && !f.rootOnly && groupBy !== 'accountId' && groupBy !== 'direction';
    if (coarse && daily && groupBy !== 'hour') {
      // The whole UTC days inside the window from the daily rollup (a month by day: about 30 cells per provider and
      // status instead of 720), the hours before the first and after the last from the hourly one.
      const d1 = h1 === null ? null : Math.ceil(h1 / DAY_MS) * DAY_MS;
      const d2 = h2 === null ? null : Math.floor(h2 / DAY_MS) * DAY_MS;
      if (d1 === null || d2 === null || d1 < d2) {
        await this.fromCells('call_provider_daily', 'day', f, groupBy, d1, d2, out);
        if (h1 !== null && d1! > h1) await this.fromCells('call_provider_hourly', 'hour', f, groupBy, h1, d1, out);
        if (h2 !== null && d2! < h2) await this.fromCells('call_provider_hourly', 'hour', f, groupBy, d2, h2, out);
        return;
      }
    }
    await this.fromCells(coarse ? 'call_provider_hourly' : 'call_leg_hourly', 'hour', f, groupBy, h1, h2, out);
  }

  /** Cells of one rollup whose period starts in [p1, p2) (unbounded where null; a null bound keeps the no-start cell). */
  private async fromCells(
    rollup: 'call_provider_daily' | 'call_provider_hourly' | 'call_leg_hourly', period: 'hour' | 'day',
    f: CallFilters, groupBy: GroupBy | null, p1: number | null, p2: number | null, out: Map<string | null, KpiTotals>,
  ) {
    const table = sql.table(rollup);
    const at = sql.ref(`h.${period}`);
    const w: RawBuilder<unknown>[] = [];
    if (f.provider) w.push(sql`h.provider = ${f.provider}`);
    if (f.accountId) w.push(sql`h.account_id = ${f.accountId}`);
    if (f.status) w.push(sql`h.status = ${f.status}`);
    if (f.attempt === true) w.push(sql`h.status = ANY (${[...TERMINAL_STATUSES]}::text[])`);
    if (f.attempt === false) w.push(sql`h.status <> ALL (${[...TERMINAL_STATUSES]}::text[])`);
    if (f.direction) w.push(sql`h.direction = ${f.direction}`);
    if (f.rootOnly) w.push(sql`h.is_root`);
    if (p1 !== null) w.push(sql`${at} >= ${new Date(p1).toISOString()}::timestamptz`);
    if (p2 !== null) w.push(sql`${at} < ${new Date(p2).toISOString()}::timestamptz`);
    const key = rollupKey(groupBy, period);
    const cells = await sql<CellRow>`
      SELECT ${key} AS k, h.status, sum(h.legs)::text AS legs, sum(h.talk_ms)::text AS talk_ms, sum(h.ring_ms)::text AS ring_ms,
        sum(h.ring_n)::text AS ring_n, sum(h.machine)::text AS machine, min(h.talk_min_ms)::text AS talk_min_ms, max(h.talk_max_ms)::text AS talk_max_ms
      FROM ${table} h WHERE ${and(w)} GROUP BY 1, 2`.execute(this.db);
    const hist = await sql<{ k: unknown; b: number; n: string }>`
      SELECT ${key} AS k, (u.i - 1)::int AS b, sum(u.v)::text AS n
      FROM ${table} h, unnest(h.talk_hist) WITH ORDINALITY AS u(v, i)
      WHERE ${and([...w, sql`h.status = 'completed'`])} GROUP BY 1, 2 HAVING sum(u.v) <> 0`.execute(this.db);
    merge(out, cells.rows, hist.rows);
  }

  private fromLegs(f: CallFilters, groupBy: GroupBy | null, out: Map<string | null, KpiTotals>): Promise<void> {
    return withNumberGrams((grams) => this.fromLegsWith(f, grams, groupBy, out));
  }

  private async fromLegsWith(f: CallFilters, grams: boolean, groupBy: GroupBy | null, out: Map<string | null, KpiTotals>) {
    const w = callFilterSql(f, grams);
    const key = legKey(groupBy);
    const cells = await sql<CellRow>`
      SELECT ${key} AS k, l.status, count(*)::text AS legs, sum(floor(coalesce(l.talk_duration_sec, 0) * 1000 + 0.5))::text AS talk_ms,
        coalesce(sum(floor(l.ring_duration_sec * 1000 + 0.5)), 0)::text AS ring_ms, count(l.ring_duration_sec)::text AS ring_n,
        count(*) FILTER (WHERE l.answered_by IN ('machine', 'fax'))::text AS machine,
        min(floor(coalesce(l.talk_duration_sec, 0) * 1000 + 0.5))::text AS talk_min_ms, max(floor(coalesce(l.talk_duration_sec, 0) * 1000 + 0.5))::text AS talk_max_ms
      FROM call_legs l WHERE ${and(w)} GROUP BY 1, 2`.execute(this.db);
    const hist = await sql<{ k: unknown; b: number; n: string }>`
      SELECT ${key} AS k, width_bucket(coalesce(l.talk_duration_sec, 0), ${TALK_EDGES_SQL}) AS b, count(*)::text AS n
      FROM call_legs l WHERE ${and([...w, sql`l.status = 'completed'`])} GROUP BY 1, 2`.execute(this.db);
    merge(out, cells.rows, hist.rows);
  }
}

const merge = (out: Map<string | null, KpiTotals>, cells: CellRow[], hist: { k: unknown; b: number; n: string }[]) => {
  const part = new Map<string | null, KpiTotals>();
  const get = (k: unknown) => {
    const key = keyOf(k);
    return part.get(key) ?? part.set(key, emptyKpiTotals()).get(key)!;
  };
  for (const r of cells) {
    const t = get(r.k);
    const legs = Number(r.legs);
    t.legs += legs;
    t.byStatus[r.status] = (t.byStatus[r.status] ?? 0) + legs;
    if (isTerminalStatus(r.status as LegStatus)) {
      t.ringMs += Number(r.ring_ms);
      t.ringN += Number(r.ring_n);
    }
    if (r.status === 'completed') {
      t.completedTalkMs += Number(r.talk_ms);
      t.machineAnswered += Number(r.machine);
      addKpiTotals(t, { ...emptyKpiTotals(), completedTalkMinMs: r.talk_min_ms === null ? null : Number(r.talk_min_ms), completedTalkMaxMs: r.talk_max_ms === null ? null : Number(r.talk_max_ms) });
    }
  }
  for (const r of hist) get(r.k).completedTalkHistogram[r.b]! += Number(r.n);
  for (const [k, t] of part) out.set(k, addKpiTotals(out.get(k) ?? emptyKpiTotals(), t));
};
