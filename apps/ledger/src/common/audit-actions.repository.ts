import { Injectable } from '@nestjs/common';
import { Database } from '@lib/db';

export type AuditAction = 'import' | 'projections.rebuild' | 'erasure' | 'retention.drop';

export interface AuditActionRow {
  id: string;
  at: string;
  keyName: string;
  action: AuditAction;
  details: Record<string, unknown>;
}

/** The `audit_actions` table: which API key (by name) imported or administered what. */
@Injectable()
export class AuditActionsRepository {
  constructor(private readonly db: Database) {}

  async record(keyName: string, action: AuditAction, details: Record<string, unknown>): Promise<void> {
    await this.db.insertInto('audit_actions').values({ key_name: keyName, action, details: JSON.stringify(details) }).execute();
  }

  async recent(limit: number): Promise<AuditActionRow[]> {
    const rows = await this.db.selectFrom('audit_actions').selectAll().orderBy('id', 'desc').limit(limit).execute();
    return rows.map((r) => ({ id: String(r.id), at: r.at.toISOString(), keyName: r.key_name, action: r.action as AuditAction, details: r.details }));
  }
}
