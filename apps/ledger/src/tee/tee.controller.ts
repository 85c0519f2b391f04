import { Controller, Get, Inject, Injectable, Logger, Post, Req, Res, UseGuards, type OnApplicationShutdown } from '@nestjs/common';
import type { FastifyReply } from 'fastify';
import { Counter, Histogram } from 'prom-client';
import { z } from 'zod';
import { LEDGER_CONFIG, type LedgerConfig } from '@lib/config';
import { GroupCommitWriter, type AppendOutcome, type WebhookRecord } from '@lib/event-store';
import { PROVIDERS, teeAnswerTooLarge, teeAppTimeout, teeAppUnreachable, teeNotConfigured, teePathInvalid, type Provider } from '@lib/ledger';
import { computeTwilioSignature, formPairs, ProviderRegistry, TwilioAdapter } from '@lib/providers';
import { ApiRoute } from '../common/api-route.decorator.js';
import { TEE_PREFIX } from '../common/body-parser.js';
import { MetricsService } from '../metrics/metrics.service.js';
import { IngestWebhookHandler } from '../webhooks/ingest-webhook.handler.js';
import { buildWebhookRecord } from '../webhooks/webhook-record.factory.js';
import { liveDeliveryInput, splitUrl } from '../webhooks/webhooks.controller.js';
import { WebhookSignatureGuard, type VerifiedRequest } from '../webhooks/webhook-signature.guard.js';
import { buildAnswerRecord } from './answer-record.factory.js';
import { AppForwarder, teeTargetUrl, type ForwardResult } from './app-forwarder.js';

/** Tee counters, in the service's registry (GET /metrics). */
@Injectable()
export class TeeMetrics {
  readonly requests: Counter<'provider' | 'outcome'>;
  readonly gaps: Counter<'provider' | 'what' | 'reason'>;
  readonly appSeconds: Histogram<'provider'>;
  readonly commitWaitSeconds: Histogram<'provider'>;
  constructor(metrics: MetricsService) {
    const registers = [metrics.registry];
    this.requests = new Counter({ name: 'ledger_tee_requests_total', help: 'Tee deliveries forwarded to the app, by what came back (answered, timeout, unreachable, too-large)', labelNames: ['provider', 'outcome'], registers });
    this.gaps = new Counter({
      name: 'ledger_tee_store_gaps_total',
      help: 'Tee deliveries or app answers that could not be stored (the provider got the app\'s answer anyway): what = delivery | answer',
      labelNames: ['provider', 'what', 'reason'],
      registers,
    });
    this.appSeconds = new Histogram({ name: 'ledger_tee_app_seconds', help: 'Time the app took to answer a tee delivery', labelNames: ['provider'], buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10], registers });
    this.commitWaitSeconds = new Histogram({
      name: 'ledger_tee_commit_wait_seconds',
      help: "How long the app's answer waited for the delivery's commit before it went to the provider (0 when the commit came first): what the ledger holds up a call by",
      labelNames: ['provider'],
      buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 1],
      registers,
    });
  }
}

/**
 * How long an answer waits for a delivery's transaction to ride in before it takes one of its own. Nobody waits
 * for an answer's commit, while every transaction costs CPU and a WAL flush that the deliveries' commits (which
 * hold up calls) then wait behind: from 10 deliveries/s up practically every answer rides in a later
 * delivery's transaction, and only when deliveries stop for this long do the answers left get a transaction of
 * their own (below that rate the extra transactions cost a machine nothing it needs).
 */
export const ANSWER_LINGER_MS = 100;

/**
 * How long an answer may wait while the database commits nothing before it is given up (a counted gap). The
 * deliveries' deadline (LEDGER_INGEST_DEADLINE_MS, 800 ms) is short so that no provider hangs; nobody waits for
 * an answer, so a busy database is waited for, and only one that stays silent (or refuses connections, which
 * fails at once) loses answers.
 */
export const ANSWER_DEADLINE_MS = 30_000;

/**
 * Answers are written after the provider has its reply, as passengers of the deliveries' group commit
 * (`GroupCommitWriter.ride`): the answer to call N is stored in the transaction of a later delivery instead of
 * one of its own, so that answers add no transaction, no commit flush and no pool connection to the ones the
 * deliveries wait for.
 */
@Injectable()
export class AnswerWriter implements OnApplicationShutdown {
  constructor(
    private readonly writer: GroupCommitWriter,
    @Inject(LEDGER_CONFIG) private readonly config: LedgerConfig,
  ) {}

  submit(answer: WebhookRecord): Promise<AppendOutcome> {
    return this.writer.ride(answer, { lingerMs: ANSWER_LINGER_MS, deadlineMs: Math.max(this.config.ingestDeadlineMs, ANSWER_DEADLINE_MS) });
  }

  /** After the HTTP server has answered its last request, before the pool closes: no lingering answer is lost. */
  async onApplicationShutdown(): Promise<void> {
    await this.writer.settle();
  }
}

const ROUTE_DOC = {
  tag: 'tee',
  auth: 'provider-signature' as const,
  description:
    'Tee mode: the delivery is verified and stored exactly as by /v1/webhooks, forwarded to `LEDGER_TEE_<PROVIDER>_URL` + the sub-path with ' +
    'the same method, body and query, and the app\'s answer (status, content type, body) is returned unchanged and kept, linked to the ' +
    'delivery, in the hash chain. 502/504 when the app is unreachable, answers too much or too late.',
  params: {
    provider: { description: 'freeclimb, jambonz, twilio or restcomm', schema: z.enum(PROVIDERS) },
    path: { description: 'sub-path appended to the app URL' },
  },
  responses: [{ schema: z.string().describe("the app's answer, as the app sent it"), description: "the app's answer: its status, content type and body", contentType: 'application/json' }],
  errors: [400, 404, 413, 429, 502, 503, 504],
};

/** Reasons a store failed, for the gap metric: a few fixed words, never a message. */
const gapReason = (err: unknown): string => {
  const code = (err as { code?: unknown }).code;
  return code === 'SERVICE.UNAVAILABLE' ? 'unavailable' : typeof code === 'string' && /^[A-Z0-9._]+$/i.test(code) ? code.toLowerCase() : 'error';
};

@Controller()
export class TeeController {
  private readonly logger = new Logger('Tee');

  constructor(
    private readonly ingest: IngestWebhookHandler,
    private readonly answers: AnswerWriter,
    private readonly forwarder: AppForwarder,
    private readonly providers: ProviderRegistry,
    private readonly metrics: TeeMetrics,
    @Inject(LEDGER_CONFIG) private readonly config: LedgerConfig,
  ) {}

  @Post(['v1/tee/:provider', 'v1/tee/:provider/*'])
  @UseGuards(WebhookSignatureGuard)
  @ApiRoute({ ...ROUTE_DOC, summary: 'Tee a POST delivery to the app and keep its answer', body: { contentTypes: ['application/json', 'application/x-www-form-urlencoded'], schema: z.string().describe('the provider payload, as the provider sends it') } })
  post(@Req() req: VerifiedRequest, @Res() reply: FastifyReply): Promise<void> {
    return this.tee(req, reply);
  }

  /** Twilio and Restcomm may call voice URLs with GET (parameters in the query). */
  @Get(['v1/tee/:provider', 'v1/tee/:provider/*'])
  @UseGuards(WebhookSignatureGuard)
  @ApiRoute({ ...ROUTE_DOC, summary: 'Tee a GET delivery to the app and keep its answer (Twilio, Restcomm; 405 for the others)', errors: [...ROUTE_DOC.errors, 405] })
  get(@Req() req: VerifiedRequest, @Res() reply: FastifyReply): Promise<void> {
    return this.tee(req, reply);
  }

  private async tee(req: VerifiedRequest, reply: FastifyReply): Promise<void> {
    const provider = (req.params as { provider: Provider }).provider;
    const base = this.config.tee.urls[provider];
    if (!base) throw teeNotConfigured(provider);
    const input = liveDeliveryInput(req, TEE_PREFIX);
    const [, rawQuery] = splitUrl(req.url);
    const url = teeTargetUrl(base, input.path, rawQuery);
    if (url === null) throw teePathInvalid();

    // Built once: the ingest path stores it, and its leg is what the answer is linked to.
    const record = buildWebhookRecord(input, this.providers);
    const leg = record.events.find((e) => e.legId !== null);
    // Stored while the app works on its answer: the provider waits for the slower of the two, not their sum.
    const stored = this.ingest.ingestRecord(record).then(
      (o): AppendOutcome | null => o,
      (err: unknown) => {
        this.gap(provider, 'delivery', err);
        return null;
      },
    );
    const result = await this.forwarder.forward({ url, method: req.method, headers: this.forwardHeaders(provider, req, url), body: input.rawBody });
    this.metrics.requests.inc({ provider, outcome: result.outcome });
    this.metrics.appSeconds.observe({ provider }, result.durationMs / 1000);
    // Acknowledged after the commit, as a webhook is, unless the store failed: then the app's answer goes anyway.
    const answered = performance.now();
    const delivery = await stored;
    this.metrics.commitWaitSeconds.observe({ provider }, (performance.now() - answered) / 1000);
    // Redacting, parsing and hashing the answer is work the provider must not wait for: it runs once the reply
    // is on its way (setImmediate: after this turn of the event loop has written it).
    setImmediate(() =>
      this.keepAnswer(result, {
        provider,
        receiptId: delivery?.receiptId ?? null,
        bodySha256: record.receipt.bodySha256.toString('hex'),
        legId: leg?.legId ?? null,
        accountId: leg?.accountId ?? null,
        method: req.method,
        path: input.path,
      }),
    );
    if (result.outcome !== 'answered') {
      throw result.outcome === 'timeout' ? teeAppTimeout(result.error) : result.outcome === 'unreachable' ? teeAppUnreachable(result.error) : teeAnswerTooLarge(result.error);
    }
    if (result.headers['content-type'] === undefined) {
      // Fastify would label a body without a type application/octet-stream: the app's answer goes out as it came.
      reply.hijack();
      reply.raw.writeHead(result.status, { ...result.headers, 'content-length': String(result.body.length) });
      reply.raw.end(result.body);
      return;
    }
    void reply.status(result.status).headers(result.headers).send(result.body);
  }

  /** Never awaited by the answer to the provider: a failure is a counted, logged gap, not a failed call. */
  private keepAnswer(result: ForwardResult, delivery: Parameters<typeof buildAnswerRecord>[0]): void {
    let answer;
    try {
      answer = buildAnswerRecord(delivery, result, new Date());
    } catch (err) {
      this.gap(delivery.provider, 'answer', err);
      return;
    }
    this.answers.submit(answer).catch((err: unknown) => this.gap(delivery.provider, 'answer', err));
  }

  private gap(provider: Provider, what: 'delivery' | 'answer', err: unknown): void {
    const reason = gapReason(err);
    this.metrics.gaps.inc({ provider, what, reason });
    this.logger.warn(`tee: the ${what} could not be stored (${reason}); the provider gets the app's answer anyway`);
  }

  /**
   * FreeClimb and jambonz sign the body and a timestamp: their headers pass as received. Twilio signs the URL
   * it called, so the request is signed again, with the token that signed it, for the app's URL.
   */
  private forwardHeaders(provider: Provider, req: VerifiedRequest, url: string): Record<string, string | string[] | undefined> {
    const headers: Record<string, string | string[] | undefined> = { ...req.headers };
    if (provider === 'twilio') {
      const adapter = this.providers.get('twilio') as TwilioAdapter;
      const rawBody = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const token = adapter.signingToken({ rawBody, headers: req.headers, url: req.url, nowSec: 0 });
      if (token) headers['x-twilio-signature'] = computeTwilioSignature(token, url, formPairs(rawBody));
      else delete headers['x-twilio-signature'];
    }
    return headers;
  }
}
