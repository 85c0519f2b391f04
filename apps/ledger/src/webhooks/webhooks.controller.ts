import { Controller, Get, HttpCode, Post, Req, UseGuards } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import type { AppendOutcome } from '@lib/event-store';
import type { Provider } from '@lib/ledger';
import { ApiKeyGuard } from '../common/api-key.guard.js';
import { WEBHOOK_PREFIX } from '../common/body-parser.js';
import { IngestWebhookCommand } from './ingest-webhook.command.js';
import { RejectionLog } from './rejection-log.js';
import { WebhookSignatureGuard, type VerifiedRequest } from './webhook-signature.guard.js';
import { pickHeaders } from './webhook-record.factory.js';

export interface WebhookReceipt {
  receiptId: string;
  position: string | null;
  duplicate: boolean;
  events: string[];
}

/** Restcomm's shared token may ride in the query: it is a credential, so it is not kept. */
const redactQuery = (query: string): string =>
  query.replace(/(^|&)token=[^&]*/g, '$1token=%5Bredacted%5D');

@Controller()
export class WebhooksController {
  constructor(
    private readonly commandBus: CommandBus,
    private readonly rejections: RejectionLog,
  ) {}

  @Post(['v1/webhooks/:provider', 'v1/webhooks/:provider/*'])
  @HttpCode(200)
  @UseGuards(WebhookSignatureGuard)
  async receive(@Req() req: VerifiedRequest): Promise<WebhookReceipt> {
    const provider = (req.params as { provider: Provider }).provider;
    const [pathname, query = ''] = splitUrl(req.url);
    const subPath = pathname.slice(WEBHOOK_PREFIX.length + provider.length).replace(/^\/+/, '');
    const verdict = req.signatureVerdict!;
    const outcome: AppendOutcome = await this.commandBus.execute(
      new IngestWebhookCommand({
        provider,
        rawBody: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0),
        contentType: req.headers['content-type'] ?? null,
        path: subPath,
        query: provider === 'restcomm' ? redactQuery(query) : query,
        headers: pickHeaders(req.headers),
        remoteAddr: req.ip ?? null,
        receivedAt: req.receivedAt!,
        signature:
          verdict.status === 'verified' ? { status: 'verified', timestamp: verdict.timestamp } : { status: 'unverified', timestamp: null },
        source: 'live',
      }),
    );
    return outcome;
  }

  @Get('v1/admin/webhook-rejections')
  @UseGuards(ApiKeyGuard)
  rejected() {
    return this.rejections.snapshot();
  }
}

const splitUrl = (url: string): [string, string] => {
  const q = url.indexOf('?');
  return q < 0 ? [url, ''] : [url.slice(0, q), url.slice(q + 1)];
};
