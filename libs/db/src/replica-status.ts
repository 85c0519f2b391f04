import { sql } from 'kysely';
import type { Database } from './database.js';

export interface StandbyState {
  /** False for a server that is not replaying (a primary, or a promoted standby): not a replica of ours. */
  inRecovery: boolean;
  /** WAL replayed so far (null when not in recovery). */
  replayLsn: string | null;
  /** `pg_get_wal_replay_pause_state()`: not paused, pause requested, paused. */
  replayPause: string | null;
  /** Commit time of the last transaction replayed, by the replica's clock (null before the first one). */
  lastReplayAt: Date | null;
  /** The replica's clock, for lastReplayAt. */
  now: Date;
}

/** What a standby says of its replay; cheap (no table is read). */
export const readStandbyState = async (replica: Database): Promise<StandbyState> => {
  const r = await sql<{ in_recovery: boolean; replay_lsn: string | null; pause: string | null; last_replay_at: Date | null; now: Date }>`
    SELECT pg_is_in_recovery() AS in_recovery, pg_last_wal_replay_lsn()::text AS replay_lsn,
      CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() END AS pause,
      pg_last_xact_replay_timestamp() AS last_replay_at, clock_timestamp() AS now`.execute(replica);
  const row = r.rows[0]!;
  return { inRecovery: row.in_recovery, replayLsn: row.replay_lsn, replayPause: row.pause, lastReplayAt: row.last_replay_at, now: row.now };
};

/** The primary's WAL write position, and how many bytes of WAL lie between it and `replayLsn` (0 when none). */
export const walBehind = async (primary: Database, replayLsn: string): Promise<{ primaryLsn: string; bytes: number }> => {
  const r = await sql<{ lsn: string; bytes: string }>`
    SELECT pg_current_wal_lsn()::text AS lsn, GREATEST(pg_wal_lsn_diff(pg_current_wal_lsn(), ${replayLsn}::pg_lsn), 0)::bigint::text AS bytes`.execute(primary);
  const row = r.rows[0]!;
  return { primaryLsn: row.lsn, bytes: Number(row.bytes) };
};
