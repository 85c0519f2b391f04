import { CommandHandler, type ICommandHandler } from '@nestjs/cqrs';
import { GroupCommitWriter, type AppendOutcome, type WebhookRecord } from '@lib/event-store';
import { ProviderRegistry } from '@lib/providers';
import { Projector } from '@lib/projections';
import { MetricsService } from '../metrics/metrics.service.js';
import { IngestWebhookCommand } from './ingest-webhook.command.js';
import { buildWebhookRecord } from './webhook-record.factory.js';

@CommandHandler(IngestWebhookCommand)
export class IngestWebhookHandler implements ICommandHandler<IngestWebhookCommand> {
  constructor(
    private readonly writer: GroupCommitWriter,
    private readonly providers: ProviderRegistry,
    private readonly metrics: MetricsService,
    private readonly projector: Projector,
  ) {}

  async execute({ input }: IngestWebhookCommand): Promise<AppendOutcome> {
    return this.ingestRecord(buildWebhookRecord(input, this.providers));
  }

  /** The same path for a record already built (tee mode builds it first, to know the delivery's leg). */
  async ingestRecord(record: WebhookRecord): Promise<AppendOutcome> {
    const provider = record.receipt.provider;
    const outcome = await this.writer.submit(record);
    if (!outcome.duplicate) this.projector.wake();
    this.metrics.webhooks.inc({ provider, result: outcome.duplicate ? 'duplicate' : 'stored' });
    if (!outcome.duplicate && record.events.some((e) => e.type === 'UnrecognizedWebhook')) {
      this.metrics.unrecognized.inc({ provider });
    }
    return outcome;
  }
}
