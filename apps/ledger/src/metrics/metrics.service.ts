import { Injectable } from '@nestjs/common';
import { Counter, Histogram, Registry, collectDefaultMetrics, Gauge } from 'prom-client';

@Injectable()
export class MetricsService {
  readonly registry = new Registry();
  readonly webhooks = new Counter({
    name: 'ledger_webhooks_total',
    help: 'Webhook deliveries answered, by provider and result (stored, duplicate)',
    labelNames: ['provider', 'result'] as const,
    registers: [this.registry],
  });
  readonly rejections = new Counter({
    name: 'ledger_webhook_rejections_total',
    help: 'Webhook deliveries refused with 401 (bad, missing or stale signature/token)',
    labelNames: ['provider'] as const,
    registers: [this.registry],
  });
  readonly rateLimited = new Counter({
    name: 'ledger_webhook_rate_limited_total',
    help: 'Webhook deliveries refused with 429: their address had too many refused signatures in the window',
    labelNames: ['provider'] as const,
    registers: [this.registry],
  });
  readonly projected = new Counter({
    name: 'ledger_projection_events_total',
    help: 'Events applied by this process to each projection (live batches; rebuilds not counted)',
    labelNames: ['projection'] as const,
    registers: [this.registry],
  });
  readonly unrecognized = new Counter({
    name: 'ledger_webhooks_unrecognized_total',
    help: 'Authentic deliveries kept verbatim but not understood',
    labelNames: ['provider'] as const,
    registers: [this.registry],
  });
  readonly batchSize = new Histogram({
    name: 'ledger_ingest_batch_size',
    help: 'Deliveries per group-commit transaction',
    buckets: [1, 2, 4, 8, 16, 32, 64, 128, 256, 512],
    registers: [this.registry],
  });
  readonly batchSeconds = new Histogram({
    name: 'ledger_ingest_batch_seconds',
    help: 'Duration of one group-commit transaction',
    buckets: [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({
    name: 'ledger_ingest_queue_depth',
    help: 'Deliveries waiting for a group-commit transaction',
    registers: [this.registry],
  });
  readonly checkpoints = new Counter({
    name: 'ledger_audit_checkpoints_total',
    help: 'Audit checkpoints this process wrote (periodic and on demand)',
    registers: [this.registry],
  });
  readonly checkpointSeconds = new Histogram({
    name: 'ledger_audit_checkpoint_seconds',
    help: 'Time one audit checkpoint took, its window read a page at a time (with pauses) and then written',
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
    registers: [this.registry],
  });
  readonly checkpointHeads = new Gauge({
    name: 'ledger_audit_checkpoint_heads',
    help: 'Stream heads in the last audit checkpoint this process wrote',
    registers: [this.registry],
  });
  readonly imported = new Counter({
    name: 'ledger_import_rows_total',
    help: 'Rows read by /v1/import, by result (imported, duplicate, rejected)',
    labelNames: ['result'] as const,
    registers: [this.registry],
  });
  readonly replicaUp = new Gauge({
    name: 'ledger_read_replica_up',
    help: 'DATABASE_READ_URL: 1 while the replica answers as a standby, 0 while it is down (reads then follow LEDGER_READ_FALLBACK)',
    registers: [this.registry],
  });
  readonly replicaLagSeconds = new Gauge({
    name: 'ledger_read_replica_lag_seconds',
    help: 'DATABASE_READ_URL: 0 when the replica has replayed all the WAL the primary wrote, else the age of the last transaction it replayed',
    registers: [this.registry],
  });
  readonly replicaLagBytes = new Gauge({
    name: 'ledger_read_replica_lag_bytes',
    help: 'DATABASE_READ_URL: WAL bytes the primary has written that the replica has not replayed yet',
    registers: [this.registry],
  });
  readonly readQueries = new Counter({
    name: 'ledger_read_queries_total',
    help: 'DATABASE_READ_URL: connections taken by the query routes, by the server that served them (replica, primary)',
    labelNames: ['server'] as const,
    registers: [this.registry],
  });

  readonly projectorThreadUp = new Gauge({
    name: 'ledger_projector_thread_up',
    help: 'LEDGER_PROJECTOR=worker: 1 while the projector\'s worker thread runs its projections, 0 while it starts or is restarted after a crash',
    registers: [this.registry],
  });
  readonly projectorThreadRestarts = new Counter({
    name: 'ledger_projector_thread_restarts_total',
    help: 'LEDGER_PROJECTOR=worker: times the projector\'s worker thread ended unasked and was started again',
    registers: [this.registry],
  });
  /** Expositions of other registries (the projector's worker thread), appended to this one's by scrape(). */
  private readonly sources: (() => Promise<string>)[] = [];

  constructor() {
    collectDefaultMetrics({ register: this.registry });
  }

  /** Adds a registry that lives elsewhere: its metric names must not be this registry's. */
  addSource(exposition: () => Promise<string>): void {
    this.sources.push(exposition);
  }

  /** This registry's exposition, then every source's (one that fails is left out of this scrape). */
  async scrape(): Promise<string> {
    const texts = await Promise.all([this.registry.metrics(), ...this.sources.map((s) => s().catch(() => ''))]);
    return texts.filter((t) => t.length > 0).map((t) => (t.endsWith('\n') ? t : `${t}\n`)).join('');
  }
}
