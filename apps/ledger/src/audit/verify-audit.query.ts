import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import {
  CheckpointSequenceChecker,
  compareWindowHeads,
  EventStoreRepository,
  isStreamOfProvider,
  RetentionRepository,
  parseStreamName,
  verifyStreamChain,
  type CheckpointProblem,
  type CheckpointRecord,
} from '@lib/event-store';
import { AuditRepository, type AuditScope } from './audit.repository.js';
import { CheckpointService } from './checkpoint.service.js';

export interface BrokenStream {
  callId: string | null;
  provider: string | null;
  streamName: string;
  position: string;
  reason: string;
}

export interface CheckpointAudit {
  checked: number;
  signed: number;
  unsigned: number;
  /** A public key is configured, so signatures were checked; false: they were not (and cannot be). */
  signaturesChecked: boolean;
  latest: { seq: number; createdAt: string; position: string; digest: string } | null;
  problems: { seq: number; reason: string }[];
}

export interface AuditReport {
  streamsChecked: number;
  eventsChecked: number;
  valid: boolean;
  broken: BrokenStream[];
  checkpoints: CheckpointAudit;
}

/** A leg's own stream names its leg; other streams (app answers, unrecognized deliveries) belong to no leg here. */
export const legOfStream = (streamName: string): { provider: string | null; callId: string | null } => {
  const s = parseStreamName(streamName);
  return s?.category === 'callLeg' ? { provider: s.provider, callId: s.legId } : { provider: null, callId: null };
};

export class VerifyAuditQuery extends Query<AuditReport> {
  constructor(readonly scope: AuditScope) {
    super();
  }
}

/**
 * Recomputes the hash chains in scope, a batch of streams at a time, so memory does not grow with the store;
 * compares each chain with its stream head; then checks the checkpoints: their sequence and signatures, and
 * the heads each one signed against the events of its window as they are now.
 */
@QueryHandler(VerifyAuditQuery)
export class VerifyAuditHandler implements IQueryHandler<VerifyAuditQuery> {
  batchSize = 500;

  constructor(
    private readonly audit: AuditRepository,
    private readonly store: EventStoreRepository,
    private readonly checkpoints: CheckpointService,
    private readonly retention: RetentionRepository,
  ) {}

  async execute({ scope }: VerifyAuditQuery): Promise<AuditReport> {
    const report: AuditReport = {
      streamsChecked: 0,
      eventsChecked: 0,
      valid: true,
      broken: [],
      checkpoints: { checked: 0, signed: 0, unsigned: 0, signaturesChecked: this.checkpoints.publicKey !== null, latest: null, problems: [] },
    };
    const brokenAt = (streamName: string, position: string, reason: string) => report.broken.push({ ...legOfStream(streamName), streamName, position, reason });
    let after: string | null = null;
    for (;;) {
      const names = await this.audit.streamNames(scope, after, this.batchSize);
      if (names.length === 0) break;
      const links = await this.store.readChainLinks({ streamNames: names });
      const heads = await this.store.readStreamHeads(names);
      const archived = await this.retention.archivedRuns(names);
      const byStream = new Map<string, typeof links>();
      for (const l of links) (byStream.get(l.streamName) ?? byStream.set(l.streamName, []).get(l.streamName)!).push(l);
      for (const name of names) {
        const chain = byStream.get(name) ?? [];
        report.streamsChecked += 1;
        report.eventsChecked += chain.length;
        const broken = verifyStreamChain(chain, heads.get(name) ?? null, archived.get(name));
        if (broken) brokenAt(name, broken.position, broken.reason);
      }
      after = names.at(-1)!;
      if (names.length < this.batchSize) break;
    }
    const whole = !scope.callId && !scope.provider && !scope.since && !scope.until;
    if (whole) {
      for (const o of await this.audit.streamsWithoutHead()) brokenAt(o.streamName, o.position, 'events exist but the stream head row is gone (deleted to hide the stream from verification)');
    }
    await this.checkCheckpoints(report, scope, brokenAt);
    report.valid = report.broken.length === 0 && report.checkpoints.problems.length === 0;
    return report;
  }

  /**
   * A callId scope checks that leg's streams in every checkpoint; a provider or time scope checks every
   * checkpointed stream and keeps the findings in scope (a deleted leg has no events left to select it by time).
   */
  private async checkCheckpoints(report: AuditReport, scope: AuditScope, brokenAt: (s: string, p: string, r: string) => void): Promise<void> {
    const checker = new CheckpointSequenceChecker(this.checkpoints.publicKey);
    const only = scope.callId ? this.audit.legStreamNames(scope) : undefined;
    const inScope = (name: string) => !scope.provider || isStreamOfProvider(name, scope.provider);
    let afterSeq = 0;
    let last: CheckpointRecord | null = null;
    for (;;) {
      const page = await this.checkpoints.repository.list(afterSeq, 100);
      for (const c of page) {
        const all = await this.checkpoints.repository.heads(c.seq);
        checker.add(c, all);
        const signed = only ? all.filter((h) => only.includes(h.streamName)) : all;
        const now = await this.checkpoints.repository.recomputeHeads(c, only);
        // Heads whose versions retention archived are proved by the month's archive, not by the live store.
        const runs = await this.retention.archivedRuns(signed.map((h) => h.streamName));
        const archived = (stream: string, version: number) => !!runs.get(stream)?.some((r) => version >= r.firstVersion && version <= r.lastVersion);
        for (const d of compareWindowHeads(signed, now, archived)) if (inScope(d.streamName)) brokenAt(d.streamName, c.position, `${d.reason} (checkpoint ${c.seq})`);
        last = c;
      }
      if (page.length < 100) break;
      afterSeq = page.at(-1)!.seq;
    }
    const problems: CheckpointProblem[] = checker.problems;
    report.checkpoints = {
      checked: checker.checked,
      signed: checker.signed,
      unsigned: checker.unsigned,
      signaturesChecked: this.checkpoints.publicKey !== null,
      latest: last ? { seq: last.seq, createdAt: last.createdAt, position: last.position, digest: last.digest } : null,
      problems,
    };
  }
}
