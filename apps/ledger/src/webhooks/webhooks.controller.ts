import { Controller, Get, HttpCode, Post, Req, UseGuards } from '@nestjs/common';
import { CommandBus } from '@nestjs/cqrs';
import type { AppendOutcome } from '@lib/event-store';
import type { Provider } from '@lib/ledger';
import { z } from 'zod';
import { PROVIDERS } from '@lib/ledger';
import { ApiKeyGuard, RequireScope } from '../common/api-key.guard.js';
import { ApiRoute } from '../common/api-route.decorator.js';
import { position } from '../common/api-schema.js';
import { WEBHOOK_PREFIX } from '../common/body-parser.js';
import { IngestWebhookCommand, type IngestWebhookInput } from './ingest-webhook.command.js';
import { RejectionLog } from './rejection-log.js';
import { WebhookSignatureGuard, type VerifiedRequest } from './webhook-signature.guard.js';
import { pickHeaders } from './webhook-record.factory.js';

export interface WebhookReceipt {
  receiptId: string;
  position: string | null;
  duplicate: boolean;
  events: string[];
}

export const webhookReceiptSchema = z
  .object({
    receiptId: z.string().describe('id of the stored raw request'),
    position: position.nullable().describe('global position of the last event appended; use as minPosition. null: no event'),
    duplicate: z.boolean().describe('the same provider already delivered the same bytes; ids are those of the original'),
    events: z.array(z.string()).describe('neutral event types the delivery was translated into'),
  })
  .meta({ id: 'WebhookReceipt' });

const rejectionsSchema = z.object({
  total: z.number().int(),
  recent: z.array(
    z.object({
      at: z.string(),
      provider: z.string(),
      path: z.string(),
      remoteAddr: z.string().nullable(),
      reason: z.string(),
      contentType: z.string().nullable(),
      bodyBytes: z.number().int(),
      userAgent: z.string().nullable(),
    }),
  ),
});

@Controller()
export class WebhooksController {
  constructor(
    private readonly commandBus: CommandBus,
    private readonly rejections: RejectionLog,
  ) {}

  @Post(['v1/webhooks/:provider', 'v1/webhooks/:provider/*'])
  @HttpCode(200)
  @UseGuards(WebhookSignatureGuard)
  @ApiRoute({
    tag: 'webhooks',
    summary: "Receive a provider's webhook (stored verbatim, translated, hash-chained)",
    description:
      'Authenticated by the provider signature (FreeClimb-Signature, Jambonz-Signature, X-Twilio-Signature) or, for Restcomm, a ' +
      'shared `token` (query or Basic password), not by API key. Answered only after the commit. The sub-path is kept as a hint.',
    auth: 'provider-signature',
    params: {
      provider: { description: 'freeclimb, jambonz, twilio or restcomm', schema: z.enum(PROVIDERS) },
      path: { description: 'any sub-path (e.g. status, dial-action), kept with the receipt' },
    },
    body: { contentTypes: ['application/json', 'application/x-www-form-urlencoded'], schema: z.string().describe('the provider payload, as the provider sends it') },
    responses: [{ schema: webhookReceiptSchema }],
    errors: [404, 413, 429, 503],
  })
  async receive(@Req() req: VerifiedRequest): Promise<WebhookReceipt> {
    const outcome: AppendOutcome = await this.commandBus.execute(new IngestWebhookCommand(liveDeliveryInput(req, WEBHOOK_PREFIX)));
    return outcome;
  }

  /**
   * Twilio and Restcomm call a voice URL or callback set to GET with the parameters in the query: the receipt
   * keeps the query as received (the body is empty), the translator reads the parameters from it, and
   * X-Twilio-Signature is over the whole URL, query included (no body parameters to append).
   */
  @Get(['v1/webhooks/:provider', 'v1/webhooks/:provider/*'])
  @HttpCode(200)
  @UseGuards(WebhookSignatureGuard)
  @ApiRoute({
    tag: 'webhooks',
    summary: 'Receive a Twilio or Restcomm delivery made with GET (parameters in the query)',
    description:
      'For voice URLs and callbacks configured with method GET. Authenticated as the POST route (X-Twilio-Signature over the full URL with its ' +
      'query; Restcomm `token`). FreeClimb and jambonz deliveries are POSTed: a GET for them is a 405. Answered only after the commit.',
    auth: 'provider-signature',
    params: {
      provider: { description: 'twilio or restcomm', schema: z.enum(PROVIDERS) },
      path: { description: 'any sub-path (e.g. voice, status), kept with the receipt' },
    },
    responses: [{ schema: webhookReceiptSchema }],
    errors: [404, 405, 429, 503],
  })
  async receiveGet(@Req() req: VerifiedRequest): Promise<WebhookReceipt> {
    return this.receive(req);
  }

  @Get('v1/admin/webhook-rejections')
  @UseGuards(ApiKeyGuard)
  @RequireScope('admin')
  @ApiRoute({ tag: 'admin', summary: 'Refused deliveries: the count and the last 200 (metadata only)', responses: [{ schema: rejectionsSchema }] })
  rejected() {
    return this.rejections.snapshot();
  }
}

/** A verified live delivery as the ingest path takes it; `prefix` is the route's (webhooks or tee). */
export const liveDeliveryInput = (req: VerifiedRequest, prefix: string): IngestWebhookInput => {
  const provider = (req.params as { provider: Provider }).provider;
  const [pathname, query = ''] = splitUrl(req.url);
  const verdict = req.signatureVerdict!;
  return {
    provider,
    rawBody: Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0),
    // An empty Content-Type is no content type.
    contentType: req.headers['content-type']?.trim() || null,
    path: pathname.slice(prefix.length + provider.length).replace(/^\/+/, ''),
    // The token is redacted where every receipt is built (webhook-record.factory), imports included.
    query,
    headers: pickHeaders(req.headers),
    remoteAddr: req.ip ?? null,
    receivedAt: req.receivedAt!,
    signature: verdict.status === 'verified' ? { status: 'verified', timestamp: verdict.timestamp } : { status: 'unverified', timestamp: null },
    source: 'live',
  };
};

export const splitUrl = (url: string): [string, string] => {
  const q = url.indexOf('?');
  return q < 0 ? [url, ''] : [url.slice(0, q), url.slice(q + 1)];
};
