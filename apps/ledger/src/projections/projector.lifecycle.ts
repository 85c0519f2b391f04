import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { LEDGER_CONFIG, type LedgerConfig } from '@lib/config';
import { Projector } from '@lib/projections';
import { SCHEMA_STATE, type SchemaState } from '../common/tokens.js';

/** Starts the in-process projector once the schema is there (unless LEDGER_PROJECTOR=off) and stops it on shutdown. */
@Injectable()
export class ProjectorLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Projector');
  private stopped = false;

  constructor(
    private readonly projector: Projector,
    @Inject(LEDGER_CONFIG) private readonly config: LedgerConfig,
    @Inject(SCHEMA_STATE) private readonly schema: SchemaState,
  ) {}

  onApplicationBootstrap(): void {
    if (!this.config.projectorInProcess) return;
    void (async () => {
      while (!this.schema.migrated && !this.stopped) await new Promise((r) => setTimeout(r, 200));
      if (this.stopped) return;
      for (;;) {
        try {
          await this.projector.init();
          break;
        } catch (err) {
          if (this.stopped) return;
          this.logger.warn(`projector not started yet: ${(err as Error).message}`);
          await new Promise((r) => setTimeout(r, 2000));
        }
      }
      if (!this.stopped) this.projector.start();
    })();
  }

  async onApplicationShutdown(): Promise<void> {
    this.stopped = true;
    await this.projector.stop();
  }
}
