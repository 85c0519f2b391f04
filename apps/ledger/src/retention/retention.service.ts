import { createHash } from 'node:crypto';
import { mkdir, rename } from 'node:fs/promises';
import { join } from 'node:path';
import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { LEDGER_CONFIG, type LedgerConfig } from '@lib/config';
import { isConnectionError } from '@lib/db';
import {
  ARCHIVE_FORMAT,
  chainLinkLine,
  entriesFromMarkers,
  ErasedLinks,
  receiptLine,
  RetentionRepository,
  RunCollector,
  signManifest,
  type ArchiveFile,
  type ArchiveManifest,
  type FileDigest,
} from '@lib/event-store';
import { hasRetention, monthRetention, type MonthRetention } from '@lib/ledger';
import { AuditActionsRepository } from '../common/audit-actions.repository.js';
import { SCHEMA_STATE, type SchemaState } from '../common/tokens.js';
import { CheckpointService } from '../audit/checkpoint.service.js';
import { DigestingWriter, MANIFEST, NEXT, syncDir, writeSynced } from './archive-files.js';

export interface ArchivedMonth {
  month: string;
  path: string;
  receipts: number;
  events: number;
  runs: number;
  manifestSha256: string;
}

export interface RetentionRunReport {
  archived: ArchivedMonth[];
  /** Months looked at and kept, with when they may be dropped (null: every pair present is kept). */
  kept: { month: string; dropAt: string | null }[];
}

const PAGE = 5000;

/**
 * Retention (README "Partitions and retention"): months whose shortest applicable rule has passed are detached from
 * the store, archived to LEDGER_ARCHIVE_DIR/<YYYY-MM>/ (receipts, events and runs as NDJSON, and a manifest signed
 * with the checkpoint key), then dropped as whole tables; each drop is recorded in audit_actions. A month detached
 * by a run that stopped half way is archived again and dropped by the next run. Projections are not touched: their
 * rows stay as summaries of what was dropped.
 */
@Injectable()
export class RetentionService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Retention');
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> | null = null;

  constructor(
    private readonly repository: RetentionRepository,
    private readonly actions: AuditActionsRepository,
    private readonly checkpoints: CheckpointService,
    @Inject(LEDGER_CONFIG) private readonly config: LedgerConfig,
    @Inject(SCHEMA_STATE) private readonly schema: SchemaState,
  ) {}

  get enabled(): boolean {
    return hasRetention(this.config.retention.policy);
  }

  onApplicationBootstrap(): void {
    const every = this.config.retention.intervalSec;
    if (!this.enabled || every <= 0) return;
    this.timer = setInterval(() => {
      if (!this.schema.migrated || this.running) return;
      this.run('retention').catch((err) => {
        if (!isConnectionError(err)) this.logger.error(`retention run failed: ${(err as Error).message}`);
      });
    }, every * 1000);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running?.catch(() => undefined);
  }

  /** One run; a second caller while one is going waits for it and gets its report. */
  run(keyName: string, now: Date = new Date()): Promise<RetentionRunReport> {
    if (!this.running) {
      this.running = this.runOnce(keyName, now).finally(() => {
        this.running = null;
      });
    }
    return this.running as Promise<RetentionRunReport>;
  }

  private async runOnce(keyName: string, now: Date): Promise<RetentionRunReport> {
    const report: RetentionRunReport = { archived: [], kept: [] };
    if (!this.enabled) return report;
    const policy = this.config.retention.policy;
    // Each month leaves under the erasures' lock: an erasure finds its rows in the store or in a written archive.
    for (const month of await this.repository.detachedMonths()) {
      const decision = monthRetention(policy, new Date(`${month}T00:00:00Z`), [], now);
      report.archived.push(await this.repository.withErasuresHeld(() => this.archiveAndDrop(month, keyName, decision, true)));
    }
    const current = `${now.toISOString().slice(0, 7)}-01`;
    for (const month of await this.repository.liveMonths()) {
      if (month >= current) break;
      const decision = monthRetention(policy, new Date(`${month}T00:00:00Z`), await this.repository.monthScopes(month), now);
      if (!decision.expired) {
        report.kept.push({ month, dropAt: decision.dropAt?.toISOString() ?? null });
        continue;
      }
      report.archived.push(
        await this.repository.withErasuresHeld(async () => {
          await this.repository.detach(month);
          return this.archiveAndDrop(month, keyName, decision, false);
        }),
      );
    }
    return report;
  }

  private async archiveAndDrop(month: string, keyName: string, decision: MonthRetention, resumed: boolean): Promise<ArchivedMonth> {
    const dir = join(this.config.retention.archiveDir!, month.slice(0, 7));
    await mkdir(dir, { recursive: true });
    const files = {} as Record<ArchiveFile, FileDigest>;

    const receipts = await DigestingWriter.create(join(dir, 'receipts.ndjson'));
    let afterId = '0';
    for (;;) {
      const page = await this.repository.detachedReceipts(month, afterId, PAGE);
      for (const r of page) await receipts.write(receiptLine(r));
      if (page.length < PAGE) break;
      afterId = page.at(-1)!.id;
    }
    files['receipts.ndjson'] = await receipts.close();

    const events = await DigestingWriter.create(join(dir, 'events.ndjson'));
    const runs = await DigestingWriter.create(join(dir, 'runs.ndjson'));
    const collector = new RunCollector(month);
    const erased = new ErasedLinks();
    let after: { stream: string; version: number } | null = null;
    for (;;) {
      const page = await this.repository.detachedLinks(month, after, PAGE);
      for (const l of page) {
        for (const run of collector.add(l)) await runs.write(run);
        await events.write(chainLinkLine(l));
        erased.add({ ...l, bodyErased: l.actualBodySha256 === null });
      }
      if (page.length < PAGE) break;
      const last = page.at(-1)!;
      after = { stream: last.streamName, version: last.streamVersion };
    }
    for (const run of collector.end()) await runs.write(run);
    files['events.ndjson'] = await events.close();
    files['runs.ndjson'] = await runs.close();

    // What the detach counted in the same transaction that took the month out of the store must all be in the files.
    const recorded = await this.repository.detachedCounts(month);
    const written = { receipts: files['receipts.ndjson'].lines, events: files['events.ndjson'].lines, runs: files['runs.ndjson'].lines };
    if (recorded.receipts !== written.receipts || recorded.events !== written.events || recorded.runs !== written.runs) {
      throw new Error(`month ${month}: the detach recorded ${JSON.stringify(recorded)}, the archive holds ${JSON.stringify(written)}; not dropped`);
    }
    // Rows erased while the month was live whose record (PersonalDataErased) is in a later month: listed here.
    const unnamed = erased.unnamed();
    const erasures = entriesFromMarkers(unnamed, await this.repository.erasureMarkers([...new Set([...unnamed.values()].map((u) => u.stream))]));
    const next = new Date(`${month}T00:00:00Z`);
    next.setUTCMonth(next.getUTCMonth() + 1);
    const body: Omit<ArchiveManifest, 'signature' | 'publicKeySha256'> = {
      format: ARCHIVE_FORMAT,
      month,
      range: { from: `${month}T00:00:00.000Z`, to: next.toISOString() },
      createdAt: new Date().toISOString(),
      counts: { receipts: files['receipts.ndjson'].lines, events: files['events.ndjson'].lines, streams: collector.streams, runs: files['runs.ndjson'].lines },
      files,
      retention: {
        rule: resumed ? 'resumed: detached by an earlier run' : 'shortest rule of the pairs present',
        dropAt: decision.dropAt?.toISOString() ?? null,
        pairs: decision.pairs,
      },
      erasures,
    };
    const manifest = signManifest(body, this.checkpoints.signer);
    const text = `${JSON.stringify(manifest, null, 2)}\n`;
    await writeSynced(join(dir, MANIFEST + NEXT), text);
    await rename(join(dir, MANIFEST + NEXT), join(dir, MANIFEST));
    await syncDir(dir);
    const manifestSha256 = createHash('sha256').update(text, 'utf8').digest();

    await this.repository.drop(month, manifestSha256, dir);
    const out: ArchivedMonth = {
      month,
      path: dir,
      receipts: body.counts.receipts,
      events: body.counts.events,
      runs: body.counts.runs,
      manifestSha256: manifestSha256.toString('hex'),
    };
    await this.actions.record(keyName, 'retention.drop', { ...out });
    this.logger.log(`month ${month.slice(0, 7)} archived to ${dir} (${out.receipts} receipts, ${out.events} events, manifest ${out.manifestSha256}) and dropped`);
    return out;
  }
}
