import { Injectable } from '@nestjs/common';
import { chainLinkLine, EventStoreRepository, RetentionRepository } from '@lib/event-store';
import { AuditRepository } from './audit.repository.js';
import { CheckpointService } from './checkpoint.service.js';

export const AUDIT_EXPORT_FORMAT = 'call-ledger-audit-export/1';

/**
 * Everything an offline verifier needs, as NDJSON: a header (with the public key, when one is configured),
 * every checkpoint with its signature and the heads it signed, then every stream (its head row) followed by
 * its events in version order: the chain links, the receipt metadata the link hashes, and the body's sha256
 * as recorded and as recomputed from the stored bytes. Bodies themselves are not exported.
 */
@Injectable()
export class AuditExportService {
  batchSize = 500;

  constructor(
    private readonly audit: AuditRepository,
    private readonly store: EventStoreRepository,
    private readonly checkpoints: CheckpointService,
    private readonly retention: RetentionRepository,
  ) {}

  async *lines(): AsyncGenerator<string> {
    yield line({
      kind: 'header',
      format: AUDIT_EXPORT_FORMAT,
      exportedAt: new Date().toISOString(),
      publicKey: this.checkpoints.signer?.publicKeyPem ?? null,
      publicKeySha256: this.checkpoints.signer?.publicKeySha256.toString('hex') ?? null,
    });
    let afterSeq = 0;
    for (;;) {
      const page = await this.checkpoints.repository.list(afterSeq, 100);
      for (const c of page) {
        const heads = await this.checkpoints.repository.heads(c.seq);
        yield line({ kind: 'checkpoint', ...c, heads: heads.map((h) => [h.streamName, h.version, h.hash]) });
      }
      if (page.length < 100) break;
      afterSeq = page.at(-1)!.seq;
    }
    let after: string | null = null;
    for (;;) {
      const names = await this.audit.streamNames({}, after, this.batchSize);
      if (names.length === 0) break;
      const heads = await this.store.readStreamHeads(names);
      const archived = await this.retention.archivedRuns(names);
      const links = await this.store.readChainLinks({ streamNames: names });
      const byStream = new Map<string, typeof links>();
      for (const l of links) (byStream.get(l.streamName) ?? byStream.set(l.streamName, []).get(l.streamName)!).push(l);
      for (const name of names) {
        const head = heads.get(name);
        const runs = archived.get(name);
        yield line({
          kind: 'stream',
          streamName: name,
          version: head?.version ?? null,
          lastHash: head?.lastHash?.toString('hex') ?? null,
          // Versions retention archived: [first, previous hash, last, last hash, month]; the chain resumes after each.
          ...(runs ? { archived: runs.map((r) => [r.firstVersion, r.prevHash?.toString('hex') ?? null, r.lastVersion, r.lastHash.toString('hex'), r.month]) } : {}),
        });
        for (const l of byStream.get(name) ?? []) {
          yield line(chainLinkLine(l));
        }
      }
      after = names.at(-1)!;
      if (names.length < this.batchSize) break;
    }
  }
}

const line = (o: unknown): string => `${JSON.stringify(o)}\n`;
