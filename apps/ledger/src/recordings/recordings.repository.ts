import { Inject, Injectable } from '@nestjs/common';
import { sql, type RawBuilder } from 'kysely';
import { Database } from '@lib/db';
import { READ_DATABASE } from '../common/tokens.js';
import { PROVIDERS, type Provider, type RecordingScope } from '@lib/ledger';
import type { CursorKey } from '../common/page-cursor.js';
import type { RecordingDto } from '../calls/calls.dto.js';
import { readModelQuery } from '../calls/calls.repository.js';

export interface RecordingFilters {
  callId?: string;
  provider?: Provider;
  accountId?: string;
  since?: string;
  until?: string;
}

interface RecordingDbRow {
  provider: Provider;
  recording_id: string;
  call_id: string;
  root_call_id: string;
  url: string;
  duration_sec: number | null;
  scope: RecordingScope;
  created_at: Date;
  created_key: string;
}

@Injectable()
export class RecordingsRepository {
  constructor(@Inject(READ_DATABASE) private readonly db: Database) {}

  /**
   * Newest first: created_at DESC, then provider, call_id, recording_id. The key is [created_at at full precision,
   * provider, call_id, recording_id] of the previous page's last row. Reads `limit + 1` rows.
   */
  async list(f: RecordingFilters, after: CursorKey | null, limit: number): Promise<{ recordings: RecordingDto[]; keys: CursorKey[] }> {
    const w: RawBuilder<unknown>[] = [];
    if (f.provider) w.push(sql`r.provider = ${f.provider}`);
    if (f.since) w.push(sql`r.created_at >= ${f.since}::timestamptz`);
    if (f.until) w.push(sql`r.created_at < ${f.until}::timestamptz`);
    if (f.accountId) {
      // Recordings carry no account: it is the leg's.
      w.push(sql`EXISTS (SELECT 1 FROM call_legs l WHERE l.provider = r.provider AND l.call_id = r.call_id AND l.account_id = ${f.accountId})`);
    }
    if (f.callId) {
      w.push(sql`(r.provider, r.root_call_id) IN (
        SELECT provider, root_call_id FROM call_legs WHERE provider = ANY (${f.provider ? [f.provider] : [...PROVIDERS]}::text[]) AND call_id = ${f.callId})`);
    }
    if (after) {
      const [at, p, c, rid] = after;
      w.push(sql`r.created_at <= ${at}::timestamptz AND (r.created_at < ${at}::timestamptz OR (r.provider, r.call_id, r.recording_id) > (${p}, ${c}, ${rid}))`);
    }
    const rows = await readModelQuery(sql<RecordingDbRow>`
      SELECT r.provider, r.recording_id, r.call_id, r.root_call_id, r.url, r.duration_sec, r.scope, r.created_at, r.created_at::text AS created_key
      FROM recordings r
      WHERE ${w.length ? sql.join(w, sql` AND `) : sql`true`}
      ORDER BY r.created_at DESC, r.provider, r.call_id, r.recording_id
      LIMIT ${limit + 1}`.execute(this.db));
    return {
      recordings: rows.rows.map((r) => ({
        recordingId: r.recording_id,
        callId: r.call_id,
        rootCallId: r.root_call_id,
        provider: r.provider,
        url: r.url,
        durationSec: r.duration_sec,
        scope: r.scope,
        createdAt: r.created_at.toISOString(),
      })),
      keys: rows.rows.map((r) => [r.created_key, r.provider, r.call_id, r.recording_id]),
    };
  }
}
