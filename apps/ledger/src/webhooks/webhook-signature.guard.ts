import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { isProvider, providerUnknown, rateLimited, signatureInvalid } from '@lib/ledger';
import { ProviderRegistry, type SignatureVerdict } from '@lib/providers';
import type { FastifyRequest } from 'fastify';
import { MetricsService } from '../metrics/metrics.service.js';
import { RejectionLog, type RejectionEntry } from './rejection-log.js';
import { SignatureFailureLimiter } from './signature-failure-limiter.js';

export type VerifiedRequest = FastifyRequest & { signatureVerdict?: SignatureVerdict; receivedAt?: Date };

/**
 * Authenticates a delivery over its raw bytes before anything is stored; refusals are counted and logged, and
 * an address that keeps failing gets 429 instead of 401 for the rest of its window (SignatureFailureLimiter).
 */
@Injectable()
export class WebhookSignatureGuard implements CanActivate {
  constructor(
    private readonly providers: ProviderRegistry,
    private readonly rejections: RejectionLog,
    private readonly metrics: MetricsService,
    private readonly limiter: SignatureFailureLimiter,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<VerifiedRequest>();
    req.receivedAt = new Date();
    const provider = (req.params as { provider?: string }).provider ?? '';
    if (!isProvider(provider)) throw providerUnknown(provider);
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
    const verdict = this.providers.get(provider).verify({
      rawBody,
      headers: req.headers,
      url: req.url,
      nowSec: Math.floor(req.receivedAt.getTime() / 1000),
    });
    if (verdict.status === 'rejected') {
      // Verified first, limited after: behind a proxy (LEDGER_TRUST_PROXY) the address comes from X-Forwarded-For,
      // which a client may be able to set, so blocking an address before checking could let anyone silence a real
      // provider by claiming its address (and Restcomm never retries). An authentic delivery is never limited.
      const wait = this.limiter.blockedFor(address);
      if (wait !== null) {
        this.metrics.rateLimited.inc({ provider });
        // Kept out of the rejection log: one address that keeps failing must not push every other refusal out.
        throw rateLimited(`too many refused signatures from this address; retry in ${wait} s`, wait);
      }
      this.metrics.rejections.inc({ provider });
      this.limiter.recordFailure(address);
      this.rejections.record(entry(verdict.reason));
      throw signatureInvalid(verdict.reason);
    }
    req.signatureVerdict = verdict;
    return true;
  }
}
