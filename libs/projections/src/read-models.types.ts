import type { ColumnType, Generated, Kysely, Transaction } from 'kysely';
import type { DB } from '@lib/db';

/**
 * Kysely types of the tables the projections own, like the store's (libs/db/src/database.types.ts). The
 * bookkeeping tables come from migrations 20261121000300 and 20261201000100; the read models are generation
 * tables created at run time (call-legs/schema.ts) and read through views of the plain names, so the view
 * names are typed and a generation table has the same row type as its view.
 */

/** int8 comes back from pg as a string (see the store's types). */
type Int8 = ColumnType<string, string | number | bigint, string | number | bigint>;
type Timestamp = ColumnType<Date, Date | string, Date | string>;
type NullableTimestamp = ColumnType<Date | null, Date | string | null, Date | string | null>;

export interface ProjectionCheckpointsTable {
  name: string;
  version: number;
  generation: Generated<number>;
  /** xid8 has no pg parser: a decimal string both ways. */
  last_xid: ColumnType<string, string | undefined, string>;
  last_position: ColumnType<string, Int8 | undefined, string | number | bigint>;
  state: Generated<'running' | 'rebuilding' | 'failing'>;
  last_error: string | null;
  failing_position: ColumnType<string | null, string | null | undefined, string | null>;
  updated_at: Generated<Date>;
}

export interface ProjectionFailuresTable {
  id: ColumnType<string, never, never>;
  projection: string;
  position: ColumnType<string | null, string | null, string | null>;
  error: string;
  failed_at: Generated<Date>;
}

export interface ProjectionParkedTable {
  projection: string;
  generation: number;
  position: Int8;
  event_id: string;
  stream_name: string;
  event_type: string;
  error: string;
  parked_at: Generated<Date>;
}

export interface CallLegsTable {
  provider: string;
  call_id: string;
  account_id: string | null;
  parent_call_id: string | null;
  root_call_id: string;
  depth: Generated<number>;
  direction: string | null;
  from_number: string | null;
  to_number: string | null;
  status: string;
  started_at: NullableTimestamp;
  answered_at: NullableTimestamp;
  ended_at: NullableTimestamp;
  ring_duration_sec: number | null;
  talk_duration_sec: number | null;
  ring_duration_source: string | null;
  talk_duration_source: string | null;
  answered_by: string | null;
  end_reason: string | null;
  sip_status: number | null;
  conference_ids: Generated<string[]>;
  final: boolean;
  event_count: number;
  last_position: Int8;
  link_conflict: Generated<boolean>;
  invalid_fields: ColumnType<unknown[], string | undefined, string>;
  verification: string;
  answered_by_detail: string | null;
  hangup_by: string | null;
  end_reason_detail: string | null;
  started_at_source: string | null;
  answered_at_source: string | null;
  ended_at_source: string | null;
  pdd_sec: number | null;
}

export interface RecordingsTable {
  provider: string;
  recording_id: string;
  call_id: string;
  root_call_id: string;
  url: string;
  duration_sec: number | null;
  scope: string;
  created_at: Timestamp;
}

/** Measures every rollup cell carries (libs/ledger/src/leg-rollup.ts). */
interface RollupMeasures {
  legs: Int8;
  talk_ms: Int8;
  ring_ms: Int8;
  ring_n: Int8;
  machine: Int8;
  talk_hist: ColumnType<string[], string, string>;
  talk_min_ms: ColumnType<string | null, string | number | null, string | number | null>;
  talk_max_ms: ColumnType<string | null, string | number | null, string | number | null>;
}

/** Fine rollup: one row per (hour, provider, account, direction, status, root or not). */
export interface CallLegHourlyTable extends RollupMeasures {
  hour: NullableTimestamp;
  provider: string;
  account_id: string | null;
  direction: string | null;
  status: string;
  is_root: boolean;
}

/** Coarse rollup: one row per (hour, provider, status). */
export interface CallProviderHourlyTable extends RollupMeasures {
  hour: NullableTimestamp;
  provider: string;
  status: string;
}

/** Coarse rollup by UTC day: one row per (day, provider, status). */
export interface CallProviderDailyTable extends RollupMeasures {
  day: NullableTimestamp;
  provider: string;
  status: string;
}

// A type alias, not an interface: withTables wants an index-compatible record.
export type ProjectionTables = {
  projection_checkpoints: ProjectionCheckpointsTable;
  projection_failures: ProjectionFailuresTable;
  projection_parked: ProjectionParkedTable;
  call_legs: CallLegsTable;
  recordings: RecordingsTable;
  call_leg_hourly: CallLegHourlyTable;
  call_provider_hourly: CallProviderHourlyTable;
  call_provider_daily: CallProviderDailyTable;
};

/** The store and the projections' own tables, for typed queries on both. */
export type ProjectionsDB = DB & ProjectionTables;

/** The same connection or transaction, typed with the projections' tables as well as the store's. */
export function withProjectionTables(db: Transaction<DB>): Transaction<ProjectionsDB>;
export function withProjectionTables(db: Kysely<DB>): Kysely<ProjectionsDB>;
export function withProjectionTables(db: Kysely<DB>): Kysely<ProjectionsDB> {
  return db.withTables<ProjectionTables>();
}
