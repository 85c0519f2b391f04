import { Injectable } from '@nestjs/common';
import { Database } from '@lib/db';

export type AuditAction = 'import' | 'projections.rebuild';

/** The `audit_actions` table: which API key (by name) imported or administered what. */
@Injectable()
export class AuditActionsRepository {
  constructor(private readonly db: Database) {}

  async record(keyName: string, action: AuditAction, details: Record<string, unknown>): Promise<void> {
    await this.db.insertInto('audit_actions').values({ key_name: keyName, action, details: JSON.stringify(details) }).execute();
  }
}
