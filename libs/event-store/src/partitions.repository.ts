import { sql } from 'kysely';
import type { Database } from '@lib/db';

/** One month of the partitioned store (migration 20261203000200_partitioned_store). */
export interface StorePartition {
  /** First day of the month, UTC, as YYYY-MM-DD. */
  month: string;
  createdAt: Date;
}

/**
 * SQL of the partitioned store's months. Partitions are made by `ledger_ensure_partitions` (SECURITY DEFINER: the
 * service's role owns no table), which the appends also call for the months of their own batches.
 */
export class PartitionsRepository {
  constructor(private readonly db: Database) {}

  /** Makes the current month and the `ahead` months after it, where missing; answers how many were made. */
  async ensureAhead(ahead: number): Promise<number> {
    const r = await sql<{ made: number }>`
      SELECT ledger_ensure_partitions(ARRAY(
        SELECT generate_series(now(), now() + make_interval(months => ${ahead}::int), interval '1 month'))) AS made`.execute(this.db);
    return r.rows[0]!.made;
  }

  /** Makes the months of the given instants, where missing. */
  async ensureFor(instants: readonly Date[]): Promise<number> {
    const r = await sql<{ made: number }>`
      SELECT ledger_ensure_partitions(${instants.map((d) => d.toISOString())}::timestamptz[]) AS made`.execute(this.db);
    return r.rows[0]!.made;
  }

  async list(): Promise<StorePartition[]> {
    const r = await sql<{ month: string; created_at: Date }>`
      SELECT to_char(month, 'YYYY-MM-DD') AS month, created_at FROM ledger_partitions ORDER BY month`.execute(this.db);
    return r.rows.map((x) => ({ month: x.month, createdAt: x.created_at }));
  }
}
