import { randomUUID } from 'node:crypto';
import { Command, CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { ErasureBlockedError, ErasureBreaksChainError, ErasureRepository, type ErasureOutcome, type ErasureSubject } from '@lib/event-store';
import { LedgerError } from '@lib/ledger';
import { AuditActionsRepository } from '../common/audit-actions.repository.js';
import { CallsRepository } from '../calls/calls.repository.js';
import { ArchiveEraserService, ArchiveErasureRefused } from '../retention/archive-eraser.js';

/** What an admin asks to erase: a number (E.164 or SIP user), one leg, or a whole call (every leg of its tree). */
export type ErasureTarget = { number: string } | { legId: string } | { callId: string };

export class EraseSubjectCommand extends Command<ErasureOutcome & { subject: ErasureSubject['kind'] }> {
  constructor(
    readonly target: ErasureTarget,
    readonly reason: string,
    readonly keyName: string,
  ) {
    super();
  }
}

@CommandHandler(EraseSubjectCommand)
export class EraseSubjectHandler implements ICommandHandler<EraseSubjectCommand> {
  constructor(
    private readonly erasures: ErasureRepository,
    private readonly calls: CallsRepository,
    private readonly audit: AuditActionsRepository,
    private readonly archives: ArchiveEraserService,
  ) {}

  async execute({ target, reason, keyName }: EraseSubjectCommand): Promise<ErasureOutcome & { subject: ErasureSubject['kind'] }> {
    let subject: ErasureSubject;
    if ('number' in target) subject = { kind: 'number', number: target.number };
    else if ('legId' in target) subject = { kind: 'leg', legIds: [target.legId] };
    else {
      // A call is its tree as the read model knows it, and the id itself (a leg the projection has not seen yet).
      const legs = await this.calls.treesOf(target.callId);
      subject = { kind: 'call', legIds: [...new Set([target.callId, ...legs.map((l) => l.leg.callId)])] };
    }
    const erasureId = randomUUID();
    let outcome: ErasureOutcome;
    // The months retention archived are erased in the same request (their files rewritten, manifests signed again).
    const archive = this.archives.forErasure();
    try {
      outcome = await this.erasures.erase({ erasureId, subject, reason, keyName, requestedAt: new Date() }, archive);
    } catch (err) {
      if (err instanceof ErasureBreaksChainError || err instanceof ErasureBlockedError || err instanceof ArchiveErasureRefused) {
        throw new LedgerError('ERASURE.REFUSED', `nothing was erased: ${err.message}`);
      }
      throw err;
    }
    const hint = subject.kind === 'number' ? subject.number.slice(-2) : subject.legIds.join(',').slice(-2);
    await this.audit.record(keyName, 'erasure', {
      erasureId, subject: subject.kind, hint, reason, streams: outcome.streams.length, events: outcome.events, fields: outcome.fields,
      receipts: outcome.receipts, notErasable: outcome.notErasable, archived: { ...outcome.archived, manifests: archive.manifests }, position: outcome.position,
    });
    return { ...outcome, subject: subject.kind };
  }
}
