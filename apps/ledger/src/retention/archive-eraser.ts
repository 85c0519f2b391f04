import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Injectable, Logger } from '@nestjs/common';
import {
  ARCHIVE_FORMAT,
  ArchiveMonthEraser,
  ErasedLinks,
  entriesFromMarkers,
  RetentionRepository,
  signManifest,
  type ArchiveErasure,
  type ArchiveErasureReport,
  type ArchiveFile,
  type ArchiveManifest,
  type ErasureRequest,
  type FileDigest,
  type SubjectMatcher,
} from '@lib/event-store';
import { CheckpointService } from '../audit/checkpoint.service.js';
import { DigestingWriter, MANIFEST, NEXT, ndjsonLines, recoverArchiveDir, switchArchiveDir, verifyArchiveFiles, writeSynced } from './archive-files.js';

/** A month rewritten by an erasure, not yet switched in. */
interface Prepared {
  month: string;
  dir: string;
  manifestText: string;
}

/** Thrown when an archived month cannot be rewritten honestly: nothing is erased (409 ERASURE.REFUSED). */
export class ArchiveErasureRefused extends Error {}

/**
 * The archive side of an erasure (README "Erasure and its proof"): each month retention archived and dropped is
 * read, and when it holds the subject its receipts and events files are written again beside the old ones with the
 * same rule as the live store (archive-erasure.ts), its manifest lists the erasure and is signed again. The month is
 * verified before (re-signing a month that was already edited would launder the edit) and after (the rewrite must
 * verify). The switch happens just before the store commits (ErasureRepository.erase).
 */
@Injectable()
export class ArchiveEraserService {
  private readonly logger = new Logger('ArchiveErasure');

  constructor(
    private readonly repository: RetentionRepository,
    private readonly checkpoints: CheckpointService,
  ) {}

  forErasure(): ArchiveMonthsErasure {
    return new ArchiveMonthsErasure(this.repository, this.checkpoints, this.logger);
  }
}

export class ArchiveMonthsErasure implements ArchiveErasure {
  private prepared: Prepared[] = [];
  /** The months it rewrote and the sha256 of each new manifest (recorded with the erasure's admin action). */
  readonly manifests: { month: string; manifestSha256: string }[] = [];

  constructor(
    private readonly repository: RetentionRepository,
    private readonly checkpoints: CheckpointService,
    private readonly logger: Logger,
  ) {}

  private get publicKey(): string | undefined {
    return this.checkpoints.signer?.publicKeyPem;
  }

  async prepare(req: ErasureRequest, m: SubjectMatcher): Promise<ArchiveErasureReport> {
    const report: ArchiveErasureReport = { months: 0, events: 0, fields: 0, receipts: 0, notErasable: 0, changed: new Map() };
    let months = await this.repository.archivedMonths();
    if (m.streams) {
      // A leg's or call's streams: only the months that archived a run of them.
      const runs = await this.repository.archivedRuns([...m.streams]);
      const holding = new Set([...runs.values()].flat().map((r) => r.month));
      months = months.filter((x) => holding.has(x.month));
    }
    for (const { month, path } of months) {
      if (!existsSync(join(path, MANIFEST)) && !existsSync(join(path, MANIFEST + NEXT))) {
        // Deleted by the operator after its keepUntil (README "Partitions and retention"), or moved: nothing to reach.
        this.logger.warn(`archive ${path} of month ${month.slice(0, 7)} is not there: the erasure cannot reach it`);
        continue;
      }
      const done = await recoverArchiveDir(path);
      if (done) this.logger.warn(`archive ${path}: an interrupted rewrite was ${done}`);
      const p = await this.prepareMonth(req, m, month, path);
      if (!p) continue;
      this.prepared.push(p.prepared);
      report.months += 1;
      report.events += p.eraser.counts.events;
      report.fields += p.eraser.counts.fields;
      report.receipts += p.eraser.counts.receipts;
      report.notErasable += p.eraser.counts.notErasable;
      for (const [stream, c] of p.eraser.changed) {
        const mine = report.changed.get(stream) ?? report.changed.set(stream, { positions: [], fields: 0 }).get(stream)!;
        mine.positions.push(...c.positions);
        mine.fields += c.fields;
        if (c.parties) mine.parties = [...new Set([...(mine.parties ?? []), ...c.parties])].sort();
      }
    }
    return report;
  }

  private async prepareMonth(req: ErasureRequest, m: SubjectMatcher, month: string, dir: string): Promise<{ prepared: Prepared; eraser: ArchiveMonthEraser } | null> {
    const oldText = await readFile(join(dir, MANIFEST), 'utf8');
    const old = JSON.parse(oldText) as ArchiveManifest;
    const at = req.requestedAt.toISOString();
    const eraser = new ArchiveMonthEraser(m, at);
    for await (const line of ndjsonLines(join(dir, 'receipts.ndjson'))) eraser.scanReceipt(line);
    // A format-1 month lists no erasures: those applied while it was live are found from their records.
    const legacy = Array.isArray(old.erasures) ? null : new ErasedLinks();
    for await (const line of ndjsonLines(join(dir, 'events.ndjson'))) {
      eraser.scanEvent(line);
      if (legacy) {
        const o = JSON.parse(line) as { position: unknown; streamName: string; type: string; data: unknown; metadata: unknown; receiptId: unknown };
        legacy.add({ position: String(o.position), streamName: o.streamName, type: o.type, data: o.data, metadata: o.metadata, bodyErased: eraser.receiptErased(String(o.receiptId)) });
      }
    }
    if (!eraser.mayChange) return null;

    // Signed with the key the service holds: checked with it. Signed with an earlier key (a rotation): the files are
    // checked against the manifest, and the new manifest is signed with the current key.
    const sameKey = old.publicKeySha256 !== null && old.publicKeySha256 === this.checkpoints.signer?.publicKeySha256.toString('hex');
    if (old.signature && !this.checkpoints.signer) {
      throw new ArchiveErasureRefused(`archive ${dir} is signed and LEDGER_CHECKPOINT_SIGNING_KEY is not set: its manifest could not be signed again`);
    }
    const before = await verifyArchiveFiles(dir, oldText, undefined, sameKey ? this.publicKey : undefined);
    if (!before.valid) throw new ArchiveErasureRefused(`archive ${dir} does not verify before the erasure (${before.problems.slice(0, 3).join('; ')}); it is not rewritten or signed again`);

    const name = (f: ArchiveFile) => f + NEXT;
    // Events first: they tell which receipts keep a query hashed in clear.
    const events = await DigestingWriter.create(join(dir, name('events.ndjson')));
    for await (const line of ndjsonLines(join(dir, 'events.ndjson'))) await events.writeLine(eraser.rewriteEvent(line));
    const eventsDigest = await events.close();
    const receipts = await DigestingWriter.create(join(dir, name('receipts.ndjson')));
    for await (const line of ndjsonLines(join(dir, 'receipts.ndjson'))) await receipts.writeLine(eraser.rewriteReceipt(line));
    const receiptsDigest = await receipts.close();
    if (!eraser.touched) {
      for (const f of ['receipts.ndjson', 'events.ndjson'] as const) await unlink(join(dir, name(f)));
      return null;
    }

    const earlier = old.erasures ?? entriesFromMarkers(legacy!.unnamed(), await this.repository.erasureMarkers([...new Set([...legacy!.unnamed().values()].map((l) => l.stream))]));
    const { signature: _s, publicKeySha256: _k, ...body } = old;
    const files: Record<ArchiveFile, FileDigest> = { ...old.files, 'receipts.ndjson': receiptsDigest, 'events.ndjson': eventsDigest };
    const manifest = signManifest(
      { ...body, format: ARCHIVE_FORMAT, files, erasures: [...earlier, { erasureId: req.erasureId, at, ...eraser.entry }], updatedAt: at },
      this.checkpoints.signer,
    );
    const manifestText = `${JSON.stringify(manifest, null, 2)}\n`;
    // The rewrite must verify as the month did (the runs file is the old one: an erasure changes no hash).
    const nameNew = (f: ArchiveFile) => (f === 'runs.ndjson' ? f : name(f));
    const after = await verifyArchiveFiles(dir, manifestText, nameNew, this.publicKey);
    if (!after.valid) throw new ArchiveErasureRefused(`the rewrite of archive ${dir} would not verify (${after.problems.slice(0, 3).join('; ')})`);
    return { prepared: { month, dir, manifestText }, eraser };
  }

  /** The new manifest of each month is the commit point (archive-files.ts), then its files replace the old ones. */
  async commit(): Promise<void> {
    for (const p of this.prepared) {
      await writeSynced(join(p.dir, MANIFEST + NEXT), p.manifestText);
      await switchArchiveDir(p.dir);
      this.manifests.push({ month: p.month, manifestSha256: createHash('sha256').update(p.manifestText, 'utf8').digest('hex') });
      this.logger.log(`archive ${p.dir}: rewritten by an erasure`);
    }
    this.prepared = [];
  }

  /** A month whose new manifest was written is finished, the others' new files removed. */
  async abort(): Promise<void> {
    for (const p of this.prepared) await recoverArchiveDir(p.dir);
    this.prepared = [];
  }
}
