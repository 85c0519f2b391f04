import { sql, type RawBuilder, type Transaction } from 'kysely';
import type { DB } from '@lib/db';
import type { RollupCell } from '@lib/ledger';
import type { Executor } from '../projection.js';
import {
  createCallLegQueryStatistics, numberGramsColumn, numberGramsIndex, numberGramsIndexName, numbersTrgmIndex, numbersTrgmIndexName,
} from '../call-legs.query-indexes.js';

/**
 * The call-legs read model's tables. Each generation N has its own tables (`call_legs_gN`, ...) behind views
 * of the plain names; the columns are typed for Kysely in ../read-models.types.ts.
 */
export const CALL_LEGS = 'call_legs';

export const legs = (g: number) => sql.table(`call_legs_g${g}`);
export const recs = (g: number) => sql.table(`recordings_g${g}`);
export const hourly = (g: number) => sql.table(`call_leg_hourly_g${g}`);

export interface CellColumn {
  name: string;
  type: string;
  nullable: boolean;
  of: (c: RollupCell) => unknown;
}
export const HOUR: CellColumn = { name: 'hour', type: 'timestamptz', nullable: true, of: (c) => c.hour };
export const PROVIDER: CellColumn = { name: 'provider', type: 'text', nullable: false, of: (c) => c.provider };
export const STATUS: CellColumn = { name: 'status', type: 'text', nullable: false, of: (c) => c.status };

/**
 * Two rollups of the same measures: the fine one carries every filter a cell can (account, direction, root or
 * not), the coarse one only the hour, provider and status, so that the common questions (a month by day, by
 * provider, by status) sum a few thousand rows instead of a cell per leg or two.
 */
export interface RollupSpec {
  table: (g: number) => string;
  /** The first column is the period a leg's start falls in: its unit for date_trunc, and its length. */
  period: { unit: 'hour' | 'day'; length: string };
  columns: CellColumn[];
}
const HOURLY = { unit: 'hour', length: '1 hour' } as const;
export const FINE: RollupSpec = {
  table: (g) => `call_leg_hourly_g${g}`,
  period: HOURLY,
  columns: [
    HOUR, PROVIDER,
    { name: 'account_id', type: 'text', nullable: true, of: (c) => c.accountId },
    { name: 'direction', type: 'text', nullable: true, of: (c) => c.direction },
    STATUS,
    { name: 'is_root', type: 'bool', nullable: false, of: (c) => c.isRoot },
  ],
};
export const COARSE: RollupSpec = { table: (g) => `call_provider_hourly_g${g}`, period: HOURLY, columns: [HOUR, PROVIDER, STATUS] };
/** The start hour's UTC day (hours are ISO-8601 strings from hourOf, so the day is their date at midnight). */
const dayOf = (hour: string | null): string | null => (hour === null ? null : `${hour.slice(0, 10)}T00:00:00.000Z`);
const DAY: CellColumn = { name: 'day', type: 'timestamptz', nullable: true, of: (c) => dayOf(c.hour) };
/**
 * The coarse rollup by UTC day: what a long window (a month by day) sums, 24 times fewer rows than by hour. UTC days
 * are always 24 hours long, which the extremes' range relies on (interval '1 day' would follow the session's zone).
 */
export const DAILY: RollupSpec = {
  table: (g) => `call_provider_daily_g${g}`,
  period: { unit: 'day', length: '24 hours' },
  columns: [DAY, PROVIDER, STATUS],
};
export const ROLLUPS = [FINE, COARSE, DAILY];
export const names = (spec: RollupSpec, prefix = '') => sql.raw(spec.columns.map((c) => prefix + c.name).join(', '));
/** IS NOT DISTINCT FROM as plain equalities (coalesced value, null flag), which the planner can hash and merge on. */
export const sameCell = (spec: RollupSpec, a: string, b: string) =>
  sql.raw(
    spec.columns
      .map((c) =>
        c.nullable
          ? `coalesce(${a}.${c.name}, ${c.type === 'timestamptz' ? "'epoch'" : "''"}) = coalesce(${b}.${c.name}, ${c.type === 'timestamptz' ? "'epoch'" : "''"}) AND (${a}.${c.name} IS NULL) = (${b}.${c.name} IS NULL)`
          : `${a}.${c.name} = ${b}.${c.name}`,
      )
      .join(' AND '),
  );

export async function createGeneration(db: Executor, g: number): Promise<void> {
  await sql`
    CREATE TABLE IF NOT EXISTS ${legs(g)} (
      provider text NOT NULL,
      call_id text NOT NULL,
      account_id text,
      parent_call_id text,
      root_call_id text NOT NULL,
      depth integer NOT NULL DEFAULT 0,
      direction text,
      from_number text,
      to_number text,
      status text NOT NULL,
      started_at timestamptz,
      answered_at timestamptz,
      ended_at timestamptz,
      ring_duration_sec double precision,
      talk_duration_sec double precision,
      ring_duration_source text,
      talk_duration_source text,
      answered_by text,
      end_reason text,
      sip_status integer,
      conference_ids text[] NOT NULL DEFAULT '{}',
      final boolean NOT NULL,
      event_count integer NOT NULL,
      last_position bigint NOT NULL,
      link_conflict boolean NOT NULL DEFAULT false,
      invalid_fields jsonb NOT NULL DEFAULT '[]',
      verification text NOT NULL,
      answered_by_detail text,
      hangup_by text,
      end_reason_detail text,
      started_at_source text,
      answered_at_source text,
      ended_at_source text,
      pdd_sec double precision,
      -- The tag of the leg's live fold state in the projecting process (fold-cache.ts); null after a bulk load.
      fold_seq bigint,
      PRIMARY KEY (provider, call_id)
    )`.execute(db);
  await sql`
    CREATE TABLE IF NOT EXISTS ${recs(g)} (
      provider text NOT NULL,
      recording_id text NOT NULL,
      call_id text NOT NULL,
      root_call_id text NOT NULL,
      url text NOT NULL,
      duration_sec double precision,
      scope text NOT NULL,
      created_at timestamptz NOT NULL,
      PRIMARY KEY (provider, call_id, recording_id)
    )`.execute(db);
  // Per rollup: one row per cell (start hour and the spec's dimensions) with integer measures that legs add
  // and take back as they change, and a talk-time histogram for the percentiles (leg-rollup.ts).
  for (const spec of ROLLUPS) {
    const cols = spec.columns.map((c) => `${c.name} ${c.type}${c.nullable ? '' : ' NOT NULL'}`).join(',\n        ');
    await sql`
      CREATE TABLE IF NOT EXISTS ${sql.table(spec.table(g))} (
        ${sql.raw(cols)},
        legs bigint NOT NULL,
        talk_ms bigint NOT NULL,
        ring_ms bigint NOT NULL,
        ring_n bigint NOT NULL,
        machine bigint NOT NULL,
        talk_hist bigint[] NOT NULL,
        talk_min_ms bigint,
        talk_max_ms bigint
      )`.execute(db);
  }
  await numberGramsColumn(g).execute(db);
  await createCallLegQueryStatistics(db, g);
  await createIndexes(db, g, 'all');
}

/**
 * The generation's secondary indexes. `parent` is needed while legs are being written (a machine detection on a
 * parent finds its children by it, and the tree heal walks down by it); the others serve the query API and the
 * live rollup upserts, and a rebuild's bulk load creates them after the rows (loader.ts): one sorted build each
 * instead of a million random inserts.
 */
export const indexesOf = (g: number): { name: string; phase: 'load' | 'after-load'; create: RawBuilder<unknown> }[] => [
  { name: `call_legs_g${g}_parent`, phase: 'load', create: sql`${legs(g)} (provider, parent_call_id)` },
  { name: `call_legs_g${g}_root`, phase: 'after-load', create: sql`${legs(g)} (provider, root_call_id)` },
  // The query API's keyset order (newest first, unknown starts last), unfiltered and per account; the ranges on the start
  // (since/until, the analytics' partial hours, a rollup cell's extremes) too. Until version 7 a second index
  // (started_at DESC, provider, call_id) stood beside it, the same keys but for where NULLs sort, which no reader
  // orders by: one more entry to write at every insert and every update that is not HOT.
  { name: `call_legs_g${g}_page`, phase: 'after-load', create: sql`${legs(g)} (started_at DESC NULLS LAST, provider, call_id)` },
  { name: `call_legs_g${g}_account_page`, phase: 'after-load', create: sql`${legs(g)} (account_id, started_at DESC NULLS LAST, provider, call_id)` },
  { name: `recordings_g${g}_root`, phase: 'after-load', create: sql`${recs(g)} (provider, root_call_id)` },
  { name: `recordings_g${g}_created`, phase: 'after-load', create: sql`${recs(g)} (created_at DESC)` },
];

/** One row per cell: a unique index, which the live upserts (ON CONFLICT) need; a bulk load adds it at the end. */
const cellIndexes = (g: number) =>
  ROLLUPS.map((spec) => sql`CREATE UNIQUE INDEX IF NOT EXISTS ${sql.raw(`${spec.table(g)}_cell`)} ON ${sql.table(spec.table(g))} (${names(spec)}) NULLS NOT DISTINCT`);

const createIndex = (ix: ReturnType<typeof indexesOf>[number]) => sql`CREATE INDEX IF NOT EXISTS ${sql.raw(ix.name)} ON ${ix.create}`;

export async function createIndexes(db: Executor, g: number, which: 'all' | 'load'): Promise<void> {
  for (const ix of indexesOf(g)) if (which === 'all' || ix.phase === which) await createIndex(ix).execute(db);
  if (which === 'all') for (const create of [...cellIndexes(g), numbersTrgmIndex(g), numberGramsIndex(g)]) await create.execute(db);
}

/** The statements that create what a bulk load leaves out (each independent of the others). */
export const afterLoadIndexes = (g: number): RawBuilder<unknown>[] => [
  ...indexesOf(g).filter((ix) => ix.phase === 'after-load').map(createIndex),
  ...cellIndexes(g),
  numbersTrgmIndex(g),
  numberGramsIndex(g),
];

/** Drops what createIndexes(g, 'after-load') creates, so that a bulk load writes its rows without them. */
export async function dropAfterLoadIndexes(db: Executor, g: number): Promise<void> {
  for (const ix of indexesOf(g)) if (ix.phase === 'after-load') await sql`DROP INDEX IF EXISTS ${sql.raw(ix.name)}`.execute(db);
  for (const spec of ROLLUPS) await sql`DROP INDEX IF EXISTS ${sql.raw(`${spec.table(g)}_cell`)}`.execute(db);
  await sql`DROP INDEX IF EXISTS ${sql.raw(numbersTrgmIndexName(g))}`.execute(db);
  await sql`DROP INDEX IF EXISTS ${sql.raw(numberGramsIndexName(g))}`.execute(db);
}

/** Every table of generation g (legs, recordings, rollups). */
export const tablesOf = (g: number): string[] => [`call_legs_g${g}`, `recordings_g${g}`, ...ROLLUPS.map((spec) => spec.table(g))];

export async function publish(trx: Transaction<DB>, g: number): Promise<void> {
  // Drop and create rather than CREATE OR REPLACE: a new version may drop or reorder columns, which REPLACE
  // refuses. Both happen inside the switch-over transaction, so readers see the old view or the new one.
  const views = [
    ['call_legs', legs(g)], ['recordings', recs(g)], ['call_leg_hourly', hourly(g)], ['call_provider_hourly', sql.table(COARSE.table(g))],
    ['call_provider_daily', sql.table(DAILY.table(g))],
  ] as const;
  // The live fold state's tag is the projector's bookkeeping, not part of the read model: the legs' view leaves it out
  // (the table's other columns as it has them, whatever a version adds).
  const cols = await sql<{ list: string }>`
    SELECT string_agg(quote_ident(column_name), ', ' ORDER BY ordinal_position) AS list FROM information_schema.columns
    WHERE table_schema = current_schema() AND table_name = ${`call_legs_g${g}`} AND column_name <> 'fold_seq'`.execute(trx);
  for (const [view, table] of views) {
    const columns = view === 'call_legs' ? sql.raw(cols.rows[0]!.list) : sql`*`;
    await sql`DROP VIEW IF EXISTS ${sql.table(view)}`.execute(trx);
    await sql`CREATE VIEW ${sql.table(view)} AS SELECT ${columns} FROM ${table}`.execute(trx);
  }
}

export async function dropGeneration(db: Executor, g: number): Promise<void> {
  await sql`DROP TABLE IF EXISTS ${legs(g)}`.execute(db);
  await sql`DROP TABLE IF EXISTS ${recs(g)}`.execute(db);
  for (const spec of ROLLUPS) await sql`DROP TABLE IF EXISTS ${sql.table(spec.table(g))}`.execute(db);
}
