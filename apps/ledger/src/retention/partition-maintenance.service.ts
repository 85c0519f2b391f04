import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { LEDGER_CONFIG, type LedgerConfig } from '@lib/config';
import { Database, isConnectionError } from '@lib/db';
import { PartitionsRepository } from '@lib/event-store';
import { SCHEMA_STATE, type SchemaState } from '../common/tokens.js';

/**
 * Keeps the months of the partitioned store made ahead of time (LEDGER_PARTITIONS_AHEAD), once the schema is
 * migrated and then every LEDGER_PARTITION_CHECK_INTERVAL_SEC. Making a month ahead costs the appends nothing; a
 * month made by an append (an import of old deliveries, a clock far off) waits for an advisory lock instead.
 */
@Injectable()
export class PartitionMaintenanceService implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Partitions');
  readonly repository: PartitionsRepository;
  private timer: NodeJS.Timeout | null = null;
  private running: Promise<unknown> = Promise.resolve();
  private done = false;

  constructor(
    db: Database,
    @Inject(LEDGER_CONFIG) private readonly config: LedgerConfig,
    @Inject(SCHEMA_STATE) private readonly schema: SchemaState,
  ) {
    this.repository = new PartitionsRepository(db);
  }

  onApplicationBootstrap(): void {
    // Until the first success the check is retried often (the schema may not be migrated yet).
    const tick = () => {
      if (!this.schema.migrated || this.busy) return;
      this.busy = true;
      this.running = this.ensure()
        .catch((err) => {
          if (!isConnectionError(err)) this.logger.error(`making partitions ahead failed: ${(err as Error).message}`);
        })
        .finally(() => {
          this.busy = false;
        });
    };
    tick();
    const every = this.config.partitions.checkIntervalSec;
    this.timer = setInterval(() => {
      if (!this.done || (every > 0 && Date.now() - this.lastRun >= every * 1000)) tick();
    }, 2000);
    this.timer.unref();
  }

  private lastRun = 0;
  private busy = false;

  async ensure(): Promise<number> {
    this.lastRun = Date.now();
    const made = await this.repository.ensureAhead(this.config.partitions.ahead);
    this.done = true;
    if (made > 0) this.logger.log(`made ${made} month partition(s) of webhook_receipts and events`);
    return made;
  }

  async onApplicationShutdown(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.running;
  }
}
