import { Command } from '@nestjs/cqrs';
import type { Provider } from '@lib/ledger';
import type { AppendOutcome } from '@lib/event-store';

export interface IngestWebhookInput {
  provider: Provider;
  rawBody: Buffer;
  contentType: string | null;
  path: string;
  query: string;
  headers: Record<string, string>;
  remoteAddr: string | null;
  receivedAt: Date;
  signature: { status: 'verified' | 'unverified' | 'not-checked'; timestamp: Date | null };
  source: 'live' | 'import';
}

export class IngestWebhookCommand extends Command<AppendOutcome> {
  constructor(readonly input: IngestWebhookInput) {
    super();
  }
}
