import { Module, type DynamicModule, type Provider as NestProvider } from '@nestjs/common';
import { APP_FILTER } from '@nestjs/core';
import { CqrsModule } from '@nestjs/cqrs';
import { TerminusModule } from '@nestjs/terminus';
import { LoggerModule, type Params as LoggingParams } from 'nestjs-pino';
import { LEDGER_CONFIG, type LedgerConfig } from '@lib/config';
import { Database, poolOf } from '@lib/db';
import { BulkAppendRepository, ErasureRepository, EventStoreRepository, GroupCommitWriter, RetentionRepository } from '@lib/event-store';
import { ProviderRegistry } from '@lib/providers';
import { callLegsProjection, Projector } from '@lib/projections';
import { EraseSubjectHandler } from './admin/erase-subject.command.js';
import { ErasuresController } from './admin/erasures.controller.js';
import { AuditActionsController, ListAuditActionsHandler } from './admin/audit-actions.controller.js';
import { ApiKeyFailureLimiter } from './common/api-key.guard.js';
import { AuditActionsRepository } from './common/audit-actions.repository.js';
import { LedgerExceptionFilter } from './common/ledger-exception.filter.js';
import { READ_DATABASE, SCHEMA_STATE, type SchemaState } from './common/tokens.js';
import { NoopController } from './common/noop.controller.js';
import { HealthController } from './health/health.controller.js';
import { ImportController } from './import/import.controller.js';
import { ImportWebhooksHandler } from './import/import-webhooks.handler.js';
import { MetricsController } from './metrics/metrics.controller.js';
import { MetricsService } from './metrics/metrics.service.js';
import { IngestWebhookHandler } from './webhooks/ingest-webhook.handler.js';
import { RejectionLog } from './webhooks/rejection-log.js';
import { SignatureFailureLimiter } from './webhooks/signature-failure-limiter.js';
import { WebhookSignatureGuard } from './webhooks/webhook-signature.guard.js';
import { WebhooksController } from './webhooks/webhooks.controller.js';
import { AppForwarder } from './tee/app-forwarder.js';
import { AnswerWriter, TeeController, TeeMetrics } from './tee/tee.controller.js';
import { GetProjectionStatusHandler } from './projections/get-projection-status.query.js';
import { createServiceProjector } from './projections/projector.provider.js';
import { ProjectorLifecycle } from './projections/projector.lifecycle.js';
import { ProjectionsController } from './projections/projections.controller.js';
import { RebuildProjectionsHandler } from './projections/rebuild-projections.command.js';
import { ReadYourWritesInterceptor } from './projections/read-your-writes.interceptor.js';
import { AuditController } from './audit/audit.controller.js';
import { AuditRepository } from './audit/audit.repository.js';
import { VerifyAuditHandler } from './audit/verify-audit.query.js';
import { AuditExportService } from './audit/audit-export.service.js';
import { CheckpointService } from './audit/checkpoint.service.js';
import { PartitionMaintenanceService } from './retention/partition-maintenance.service.js';
import { RetentionController } from './retention/retention.controller.js';
import { RetentionService } from './retention/retention.service.js';
import { ArchiveEraserService } from './retention/archive-eraser.js';
import { RunRetentionHandler } from './retention/run-retention.command.js';
import { CallsController } from './calls/calls.controller.js';
import { CallsRepository } from './calls/calls.repository.js';
import { GetCallEventsHandler } from './calls/get-call-events.query.js';
import { GetCallDiscrepanciesHandler, GetCallTreeHandler } from './calls/get-call-tree.query.js';
import { GetCallHandler } from './calls/get-call.query.js';
import { ListCallsHandler } from './calls/list-calls.query.js';
import { ExportController } from './export/export.controller.js';
import { ExportCallsHandler } from './export/export-calls.query.js';
import { ListRecordingsHandler } from './recordings/list-recordings.query.js';
import { RecordingsController } from './recordings/recordings.controller.js';
import { RecordingsRepository } from './recordings/recordings.repository.js';
import { AnalyticsController } from './analytics/analytics.controller.js';
import { AnalyticsRepository } from './analytics/analytics.repository.js';
import { GetAnalyticsSummaryHandler } from './analytics/get-analytics-summary.query.js';
import { GetAnalyticsTimeseriesHandler } from './analytics/get-analytics-timeseries.query.js';
import { ConsoleModule } from './console/console.module.js';
import { ReadReplicaService } from './replica/read-replica.service.js';

export interface AppModuleOptions {
  config: LedgerConfig;
  db: Database;
  schema: SchemaState;
  /**
   * The projector's own pool (the ledger_projector role, which owns the read models); `db` when absent (one
   * role does everything).
   */
  projectorDb?: Database;
  /**
   * DATABASE_READ_URL's pool (a streaming standby, made with the request pool's timeouts): the query routes read
   * from it while it is up. Absent: they read `db`.
   */
  replicaDb?: Database;
  /** Between two probes of the replica (tests shorten it). */
  replicaProbeMs?: number;
  /** Connection string for LISTEN/NOTIFY wake-ups of the projector (null: polling only). */
  databaseUrl: string | null;
  /** Adds POST /internal/noop, the no-I/O baseline route of the benchmarks. */
  benchRoutes?: boolean;
  /** nestjs-pino settings (app.factory builds them around the process's root logger). */
  logging?: LoggingParams;
}

@Module({})
export class AppModule {
  static forRoot(options: AppModuleOptions): DynamicModule {
    const providers: NestProvider[] = [
      { provide: LEDGER_CONFIG, useValue: options.config },
      { provide: Database, useValue: options.db },
      { provide: SCHEMA_STATE, useValue: options.schema },
      { provide: APP_FILTER, useClass: LedgerExceptionFilter },
      { provide: ProviderRegistry, useFactory: (c: LedgerConfig) => new ProviderRegistry(c.secrets, c.publicUrl), inject: [LEDGER_CONFIG] },
      { provide: EventStoreRepository, useFactory: (db: Database) => new EventStoreRepository(db), inject: [Database] },
      { provide: RetentionRepository, useFactory: (db: Database) => new RetentionRepository(db), inject: [Database] },
      { provide: ErasureRepository, useFactory: (db: Database) => new ErasureRepository(db), inject: [Database] },
      EraseSubjectHandler,
      ArchiveEraserService,
      {
        provide: BulkAppendRepository,
        useFactory: (db: Database) => {
          // COPY needs a raw client of the request pool (the bulk import runs as ledger_app, like every append).
          const pool = poolOf(db);
          if (!pool) throw new Error('the bulk import needs a Database made by createDatabase (its pg pool)');
          return new BulkAppendRepository(pool);
        },
        inject: [Database],
      },
      {
        provide: GroupCommitWriter,
        useFactory: (store: EventStoreRepository, c: LedgerConfig, metrics: MetricsService) => {
          const writer = new GroupCommitWriter(store, { batchMax: c.ingestBatchMax, queueMax: c.ingestQueueMax, concurrency: c.ingestConcurrency, maxConcurrency: c.ingestMaxConcurrency, deadlineMs: c.ingestDeadlineMs });
          writer.onBatch = (size, seconds) => {
            metrics.batchSize.observe(size);
            metrics.batchSeconds.observe(seconds);
            metrics.queueDepth.set(writer.depth);
          };
          return writer;
        },
        inject: [EventStoreRepository, LEDGER_CONFIG, MetricsService],
      },
      {
        provide: Projector,
        useFactory: (db: Database, metrics: MetricsService, c: LedgerConfig) =>
          createServiceProjector(options.projectorDb ?? db, [callLegsProjection], options.databaseUrl, c, metrics),
        inject: [Database, MetricsService, LEDGER_CONFIG],
      },
      {
        provide: ReadReplicaService,
        useFactory: (db: Database, c: LedgerConfig, metrics: MetricsService) =>
          new ReadReplicaService(db, options.replicaDb ?? null, { fallback: c.readFallback, probeMs: options.replicaProbeMs }, metrics),
        inject: [Database, LEDGER_CONFIG, MetricsService],
      },
      { provide: READ_DATABASE, useFactory: (replica: ReadReplicaService) => replica.db, inject: [ReadReplicaService] },
      ProjectorLifecycle,
      GetProjectionStatusHandler,
      RebuildProjectionsHandler,
      ReadYourWritesInterceptor,
      MetricsService,
      RejectionLog,
      {
        provide: SignatureFailureLimiter,
        useFactory: (c: LedgerConfig) => new SignatureFailureLimiter({ limit: c.signatureFailureLimit, windowMs: c.signatureFailureWindowSec * 1000 }),
        inject: [LEDGER_CONFIG],
      },
      {
        provide: ApiKeyFailureLimiter,
        useFactory: (c: LedgerConfig) => new ApiKeyFailureLimiter({ limit: c.apiKeyFailureLimit, windowMs: c.apiKeyFailureWindowSec * 1000 }),
        inject: [LEDGER_CONFIG],
      },
      AuditActionsRepository,
      ListAuditActionsHandler,
      WebhookSignatureGuard,
      IngestWebhookHandler,
      ImportWebhooksHandler,
      CallsRepository,
      RecordingsRepository,
      AuditRepository,
      ListCallsHandler,
      GetCallHandler,
      GetCallTreeHandler,
      GetCallDiscrepanciesHandler,
      GetCallEventsHandler,
      ListRecordingsHandler,
      ExportCallsHandler,
      VerifyAuditHandler,
      CheckpointService,
      PartitionMaintenanceService,
      RetentionService,
      RunRetentionHandler,
      AuditExportService,
      AnalyticsRepository,
      GetAnalyticsSummaryHandler,
      GetAnalyticsTimeseriesHandler,
      AppForwarder,
      AnswerWriter,
      TeeMetrics,
    ];
    return {
      module: AppModule,
      imports: [CqrsModule.forRoot(), TerminusModule.forRoot({ logger: false }), LoggerModule.forRoot(options.logging ?? {}), ConsoleModule.forRoot(options.config)],
      controllers: [
        WebhooksController,
        ImportController,
        HealthController,
        MetricsController,
        ProjectionsController,
        CallsController,
        RecordingsController,
        ExportController,
        AuditController,
        AnalyticsController,
        AuditActionsController,
        RetentionController,
        ErasuresController,
        TeeController,
        ...(options.benchRoutes ? [NoopController] : []),
      ],
      providers,
    };
  }
}
