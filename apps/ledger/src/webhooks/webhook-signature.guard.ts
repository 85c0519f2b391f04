import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { LEDGER_CONFIG, type LedgerConfig } from '@lib/config';
import { GET_PROVIDERS, isProvider, methodNotAllowed, providerNotConfigured, providerUnknown, rateLimited, signatureInvalid } from '@lib/ledger';
import { ProviderRegistry, type SignatureVerdict } from '@lib/providers';
import type { FastifyRequest } from 'fastify';
import { MetricsService } from '../metrics/metrics.service.js';
import { RejectionLog, type RejectionEntry } from './rejection-log.js';
import { SignatureFailureLimiter } from './signature-failure-limiter.js';

export type VerifiedRequest = FastifyRequest & { signatureVerdict?: SignatureVerdict; receivedAt?: Date };

/**
 * Authenticates a delivery over its raw bytes before anything is stored; refusals are counted and logged, and
 * an address that keeps failing is refused altogether (429, even with a right signature) for the rest of its
 * window (SignatureFailureLimiter). A provider without a secret is refused unless LEDGER_ACCEPT_UNSIGNED lists it.
 */
@Injectable()
export class WebhookSignatureGuard implements CanActivate {
  constructor(
    private readonly providers: ProviderRegistry,
    private readonly rejections: RejectionLog,
    private readonly metrics: MetricsService,
    private readonly limiter: SignatureFailureLimiter,
    @Inject(LEDGER_CONFIG) private readonly config: LedgerConfig,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<VerifiedRequest>();
    req.receivedAt = new Date();
    const provider = (req.params as { provider?: string }).provider ?? '';
    if (!isProvider(provider)) throw providerUnknown(provider);
    if (req.method === 'GET' && !GET_PROVIDERS.includes(provider)) throw methodNotAllowed(provider, req.method);
    const rawBody = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const address = req.ip ?? 'unknown';
    const entry = (reason: string): RejectionEntry => ({
      at: req.receivedAt!.toISOString(),
      provider,
      path: req.url.split('?', 1)[0]!,
      remoteAddr: req.ip ?? null,
      reason,
      contentType: req.headers['content-type'] ?? null,
      bodyBytes: rawBody.length,
      userAgent: req.headers['user-agent'] ?? null,
    });
    // Checked before the signature: a guesser over its allowance must not learn that a guess was right.
    const wait = this.limiter.blockedFor(address);
    if (wait !== null) {
      this.metrics.rateLimited.inc({ provider });
      // Kept out of the rejection log: one address that keeps failing must not push every other refusal out.
      throw rateLimited(`too many refused signatures from this address; retry in ${wait} s`, wait);
    }
    const adapter = this.providers.get(provider);
    if (!adapter.verifying && !this.config.acceptUnsigned.includes(provider)) {
      this.metrics.rejections.inc({ provider });
      this.rejections.record(entry('no secret configured for this provider'));
      throw providerNotConfigured(provider);
    }
    const verdict = adapter.verify({
      rawBody,
      headers: req.headers,
      url: req.url,
      nowSec: Math.floor(req.receivedAt.getTime() / 1000),
    });
    if (verdict.status === 'rejected') {
      this.metrics.rejections.inc({ provider });
      this.limiter.recordFailure(address);
      this.rejections.record(entry(verdict.reason));
      throw signatureInvalid(verdict.reason);
    }
    req.signatureVerdict = verdict;
    return true;
  }
}
