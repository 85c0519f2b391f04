import { Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { isProvider, providerUnknown, signatureInvalid } from '@lib/ledger';
import { ProviderRegistry, type SignatureVerdict } from '@lib/providers';
import type { FastifyRequest } from 'fastify';
import { MetricsService } from '../metrics/metrics.service.js';
import { RejectionLog } from './rejection-log.js';

export type VerifiedRequest = FastifyRequest & { signatureVerdict?: SignatureVerdict; receivedAt?: Date };

/** Authenticates a delivery over its raw bytes before anything is stored; refusals are counted and logged. */
@Injectable()
export class WebhookSignatureGuard implements CanActivate {
  constructor(
    private readonly providers: ProviderRegistry,
    private readonly rejections: RejectionLog,
    private readonly metrics: MetricsService,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<VerifiedRequest>();
    req.receivedAt = new Date();
    const provider = (req.params as { provider?: string }).provider ?? '';
    if (!isProvider(provider)) throw providerUnknown(provider);
    const rawBody = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const verdict = this.providers.get(provider).verify({
      rawBody,
      headers: req.headers,
      url: req.url,
      nowSec: Math.floor(req.receivedAt.getTime() / 1000),
    });
    if (verdict.status === 'rejected') {
      this.metrics.rejections.inc({ provider });
      this.rejections.record({
        at: req.receivedAt.toISOString(),
        provider,
        path: req.url.split('?', 1)[0]!,
        remoteAddr: req.ip ?? null,
        reason: verdict.reason,
        contentType: req.headers['content-type'] ?? null,
        bodyBytes: rawBody.length,
        userAgent: req.headers['user-agent'] ?? null,
      });
      throw signatureInvalid(verdict.reason);
    }
    req.signatureVerdict = verdict;
    return true;
  }
}
