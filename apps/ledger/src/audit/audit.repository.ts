import { Injectable } from '@nestjs/common';
import { sql, type RawBuilder } from 'kysely';
import { Database } from '@lib/db';
import { PROVIDERS, type Provider } from '@lib/ledger';

export interface AuditScope {
  since?: string;
  until?: string;
  callId?: string;
  provider?: Provider;
}

@Injectable()
export class AuditRepository {
  constructor(private readonly db: Database) {}

  /**
   * Names of the streams in scope, in name order, after `after`, at most `limit`. A time window selects the
   * streams that received an event in it (each then checked from its first event: a chain has no middle).
   */
  async streamNames(scope: AuditScope, after: string | null, limit: number): Promise<string[]> {
    const w: RawBuilder<unknown>[] = [];
    if (after !== null) w.push(sql`s.stream_name > ${after}`);
    if (scope.callId) {
      w.push(sql`s.stream_name = ANY (${this.legStreamNames(scope)}::text[])`);
    } else if (scope.provider) {
      // Tee mode: the app's answers on the provider's legs are the provider's too.
      w.push(sql`(s.stream_name LIKE ${`callLeg-${scope.provider}:%`} OR s.stream_name LIKE ${`appAnswers-${scope.provider}:%`} OR s.stream_name = ${`unrecognized-${scope.provider}`})`);
    }
    if (scope.since || scope.until) {
      const t: RawBuilder<unknown>[] = [sql`e.stream_name = s.stream_name`];
      if (scope.since) t.push(sql`e.received_at >= ${scope.since}::timestamptz`);
      if (scope.until) t.push(sql`e.received_at < ${scope.until}::timestamptz`);
      w.push(sql`EXISTS (SELECT 1 FROM events e WHERE ${sql.join(t, sql` AND `)})`);
    }
    const rows = await sql<{ stream_name: string }>`
      SELECT s.stream_name FROM streams s WHERE ${w.length ? sql.join(w, sql` AND `) : sql`true`}
      ORDER BY s.stream_name LIMIT ${limit}`.execute(this.db);
    return rows.rows.map((r) => r.stream_name);
  }

  /** The stream names a callId scope stands for (per provider, or the one asked): the leg's, and its app answers' (tee mode). */
  legStreamNames(scope: AuditScope): string[] {
    const providers = scope.provider ? [scope.provider] : [...PROVIDERS];
    return providers.flatMap((p) => [`callLeg-${p}:${scope.callId}`, `appAnswers-${p}:${scope.callId}`]);
  }

  /**
   * Streams that have events but no head row: deleting the row would otherwise hide the stream from the walk
   * over `streams`. A full scan, like the verification of every chain it goes with.
   */
  async streamsWithoutHead(): Promise<{ streamName: string; position: string }[]> {
    const rows = await sql<{ stream_name: string; position: string }>`
      SELECT e.stream_name, min(e.global_position)::text AS position FROM events e
      WHERE NOT EXISTS (SELECT 1 FROM streams s WHERE s.stream_name = e.stream_name)
      GROUP BY e.stream_name ORDER BY e.stream_name`.execute(this.db);
    return rows.rows.map((r) => ({ streamName: r.stream_name, position: r.position }));
  }
}
