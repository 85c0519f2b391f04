import { Inject, Injectable, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { LEDGER_CONFIG, type LedgerConfig } from '@lib/config';
import { unauthorized } from '@lib/ledger';
import { matchesAny } from '@lib/providers';
import type { FastifyRequest } from 'fastify';
import { sessionKeyFromCookie } from '../console/console-sessions.js';

/** `Authorization: Bearer <key>` against LEDGER_API_KEYS, compared in constant time. */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(@Inject(LEDGER_CONFIG) private readonly config: LedgerConfig) {}

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<FastifyRequest>();
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(.+)$/i.exec(header.trim()) : null;
    // Or the key a console session was opened with (the console's hook attaches it only when no Authorization header came).
    const key = match ? match[1]! : sessionKeyFromCookie(req);
    if (key === null || this.config.apiKeys.length === 0 || !matchesAny(key, this.config.apiKeys)) {
      throw unauthorized(this.config.apiKeys.length === 0 ? 'no API keys are configured (LEDGER_API_KEYS): this route is closed' : undefined);
    }
    return true;
  }
}
