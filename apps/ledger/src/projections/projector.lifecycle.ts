import { Inject, Injectable, Logger, type OnApplicationBootstrap, type OnApplicationShutdown } from '@nestjs/common';
import { LEDGER_CONFIG, type LedgerConfig } from '@lib/config';
import { Database, isConnectionError, isTransientError } from '@lib/db';
import { callLegsProjection, Projector } from '@lib/projections';
import { ProviderRegistry } from '@lib/providers';
import { SCHEMA_STATE, type SchemaState } from '../common/tokens.js';
import { retranslateWithAdapters } from '../retranslation/retranslate.js';
import { ThreadedProjector, type ProjectorThreadHealth } from './projector.thread.js';

/** What /health says of the projector: how it runs and, in a worker thread, whether that thread is up. */
export interface ProjectorHealth extends Partial<Omit<ProjectorThreadHealth, 'state'>> {
  mode: LedgerConfig['projectorMode'];
  state: ProjectorThreadHealth['state'] | 'off';
}

/**
 * Once the schema is there: re-translates the stored receipts whose translator version is older than this code's
 * (docs/providers.md, "Translator versions and re-translation"), then starts the in-process projector (unless LEDGER_PROJECTOR=off):
 * on this event loop (inline, what LEDGER_PROJECTOR=on means) or in a worker thread (LEDGER_PROJECTOR=worker,
 * projector.thread.ts), which initialises it there. Stops both on shutdown, before the pools close. Ingest is served meanwhile: live
 * deliveries are translated by this code already.
 */
@Injectable()
export class ProjectorLifecycle implements OnApplicationBootstrap, OnApplicationShutdown {
  private readonly logger = new Logger('Projector');
  private readonly retranslationLogger = new Logger('Retranslation');
  private stopped = false;
  private running = false;
  /** Settles once the start-up work (re-translation, then the projector's start: it runs) is over or given up. */
  started: Promise<void> = Promise.resolve();

  constructor(
    private readonly projector: Projector,
    @Inject(LEDGER_CONFIG) private readonly config: LedgerConfig,
    @Inject(SCHEMA_STATE) private readonly schema: SchemaState,
    private readonly db: Database,
    private readonly providers: ProviderRegistry,
  ) {}

  onApplicationBootstrap(): void {
    this.started = (async () => {
      while (!this.schema.migrated && !this.stopped) await new Promise((r) => setTimeout(r, 200));
      if (this.stopped) return;
      const appended = await this.retranslate();
      if (!this.config.projectorInProcess || this.stopped) return;
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
      if (this.stopped) return;
      this.projector.start();
      // In a worker thread, the projector runs once the thread has loaded and initialised it.
      if (this.projector instanceof ThreadedProjector) await this.projector.whenRunning();
      this.running = true;
      // A leg whose old events were superseded without new ones on its own stream is only corrected by a rebuild;
      // when the projection's version changed too, this joins the rebuild init() started.
      if (appended > 0) {
        void this.projector.rebuild(callLegsProjection.name).catch((err) => this.logger.error(`rebuild after re-translation failed: ${(err as Error).message}`));
      }
    })();
  }

  /**
   * Receipts given a new translation. An unreachable or busy database is waited for, as the projector's start is;
   * any other failure is logged and the service carries on (the next start resumes after the last batch).
   */
  private async retranslate(): Promise<number> {
    let appended = 0;
    for (;;) {
      try {
        const report = await retranslateWithAdapters(this.db, this.providers, {
          log: (m) => this.retranslationLogger.log(m),
          stopped: () => this.stopped,
        });
        appended += report.appended;
        if (appended > 0) this.retranslationLogger.log(`${appended} receipts got a new translation; the call_legs projection is rebuilt from them`);
        return appended;
      } catch (err) {
        if (this.stopped) return appended;
        if (!isConnectionError(err) && !isTransientError(err)) {
          this.retranslationLogger.error(`re-translation failed, the next start resumes it: ${(err as Error).message}`);
          return appended;
        }
        this.retranslationLogger.warn(`re-translation waits for the database: ${(err as Error).message}`);
        await new Promise((r) => setTimeout(r, 2000));
      }
    }
  }

  health(): ProjectorHealth {
    const mode = this.config.projectorMode;
    if (mode === 'off') return { mode, state: 'off' };
    if (this.projector instanceof ThreadedProjector) return { mode, ...this.projector.health() };
    return { mode: 'inline', state: this.stopped ? 'stopped' : this.running ? 'running' : 'starting' };
  }

  async onApplicationShutdown(): Promise<void> {
    // A re-translation in flight stops after its batch (each batch is one transaction; the next start resumes).
    this.stopped = true;
    await this.projector.stop();
  }
}
