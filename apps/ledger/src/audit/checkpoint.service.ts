import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import type { KeyObject } from 'node:crypto';
import { LEDGER_CONFIG, type LedgerConfig } from '@lib/config';
import { Database, isConnectionError } from '@lib/db';
import { CheckpointRepository, loadSigningKey, type CheckpointRecord, type CheckpointSigner } from '@lib/event-store';
import { SCHEMA_STATE, type SchemaState } from '../common/tokens.js';
import { MetricsService } from '../metrics/metrics.service.js';

/**
 * Takes the signed checkpoints of the stream heads: every LEDGER_CHECKPOINT_INTERVAL_SEC when events were
 * appended, and on demand. Each checkpoint is also written to the log, which is a copy outside the database:
 * an owner who rewrites the store and its checkpoint table still contradicts what was logged and exported.
 */
@Injectable()
export class CheckpointService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Checkpoints');
  readonly signer: CheckpointSigner | null;
  readonly repository: CheckpointRepository;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> = Promise.resolve();

  constructor(
    db: Database,
    @Inject(LEDGER_CONFIG) private readonly config: LedgerConfig,
    @Inject(SCHEMA_STATE) private readonly schema: SchemaState,
    private readonly metrics: MetricsService,
  ) {
    // A key that does not parse stops the start: signing nothing while configured to sign would be a lie.
    this.signer = config.checkpointSigningKey ? loadSigningKey(config.checkpointSigningKey) : null;
    this.repository = new CheckpointRepository(db);
  }

  get publicKey(): KeyObject | null {
    return this.signer?.publicKey ?? null;
  }

  onApplicationBootstrap(): void {
    if (!this.signer) this.logger.warn('LEDGER_CHECKPOINT_SIGNING_KEY is not set: audit checkpoints are not signed');
    if (this.config.checkpointIntervalSec <= 0) return;
    this.timer = setInterval(() => {
      if (!this.schema.migrated) return;
      this.running = this.create(true).catch((err) => {
        if (!isConnectionError(err)) this.logger.error(`checkpoint failed: ${(err as Error).message}`);
      });
    }, this.config.checkpointIntervalSec * 1000);
    this.timer.unref();
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }

  async create(onlyIfChanged: boolean): Promise<CheckpointRecord | null> {
    const started = performance.now();
    const c = await this.repository.create(this.signer, onlyIfChanged);
    if (c) {
      this.metrics.checkpoints.inc();
      this.metrics.checkpointSeconds.observe((performance.now() - started) / 1000);
      this.metrics.checkpointHeads.set(c.headCount);
      this.logger.log(
        `checkpoint ${c.seq}: position ${c.position}, ${c.streamCount} streams, ${c.headCount} heads, digest ${c.digest}, ${c.signature ? `signature ${c.signature}` : 'unsigned'}`,
      );
    }
    return c;
  }
}
