import { Injectable } from '@nestjs/common';
import { Database } from '@lib/db';

export const AUDIT_ACTIONS = ['import', 'projections.rebuild', 'erasure', 'retention.drop', 'export.calls', 'export.audit'] as const;
export type AuditAction = (typeof AUDIT_ACTIONS)[number];

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

  async recent(limit: number, action?: AuditAction): Promise<AuditActionRow[]> {
    let q = this.db.selectFrom('audit_actions').selectAll();
    if (action) q = q.where('action', '=', action);
    const rows = await q.orderBy('id', 'desc').limit(limit).execute();
    return rows.map((r) => ({ id: String(r.id), at: r.at.toISOString(), keyName: r.key_name, action: r.action as AuditAction, details: r.details }));
  }
}
