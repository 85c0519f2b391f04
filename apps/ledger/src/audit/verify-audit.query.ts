import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import { EventStoreRepository, verifyStreamChain } from '@lib/event-store';
import { AuditRepository, type AuditScope } from './audit.repository.js';

export interface AuditReport {
  streamsChecked: number;
  eventsChecked: number;
  valid: boolean;
  broken: { callId: string | null; provider: string | null; streamName: string; position: string; reason: string }[];
}

/** `callLeg-<provider>:<callId>`; other streams (unrecognized deliveries) belong to no leg. */
export const legOfStream = (streamName: string): { provider: string | null; callId: string | null } => {
  const m = /^callLeg-([^:]+):(.+)$/s.exec(streamName);
  return m ? { provider: m[1]!, callId: m[2]! } : { provider: null, callId: null };
};

export class VerifyAuditQuery extends Query<AuditReport> {
  constructor(readonly scope: AuditScope) {
    super();
  }
}

/** Recomputes the hash chains in scope, a batch of streams at a time, so memory does not grow with the store. */
@QueryHandler(VerifyAuditQuery)
export class VerifyAuditHandler implements IQueryHandler<VerifyAuditQuery> {
  batchSize = 500;

  constructor(
    private readonly audit: AuditRepository,
    private readonly store: EventStoreRepository,
  ) {}

  async execute({ scope }: VerifyAuditQuery): Promise<AuditReport> {
    const report: AuditReport = { streamsChecked: 0, eventsChecked: 0, valid: true, broken: [] };
    let after: string | null = null;
    for (;;) {
      const names = await this.audit.streamNames(scope, after, this.batchSize);
      if (names.length === 0) break;
      const links = await this.store.readChainLinks({ streamNames: names });
      const byStream = new Map<string, typeof links>();
      for (const l of links) (byStream.get(l.streamName) ?? byStream.set(l.streamName, []).get(l.streamName)!).push(l);
      for (const name of names) {
        const chain = byStream.get(name) ?? [];
        report.streamsChecked += 1;
        report.eventsChecked += chain.length;
        const broken = verifyStreamChain(chain);
        if (broken) report.broken.push({ ...legOfStream(name), streamName: name, position: broken.position, reason: broken.reason });
      }
      after = names.at(-1)!;
      if (names.length < this.batchSize) break;
    }
    report.valid = report.broken.length === 0;
    return report;
  }
}
