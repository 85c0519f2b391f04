import { Inject, Injectable, SetMetadata, type CanActivate, type ExecutionContext } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { LEDGER_CONFIG, type ApiKey, type ApiScope, type LedgerConfig } from '@lib/config';
import { forbiddenScope, rateLimited, unauthorized } from '@lib/ledger';
import { constantTimeEqual } from '@lib/providers';
import type { FastifyRequest } from 'fastify';
import { SignatureFailureLimiter } from '../webhooks/signature-failure-limiter.js';
import { sessionKeyFromCookie } from '../console/console-sessions.js';

const SCOPE = 'ledger:api-scope';

/** The scope a controller or route needs. A route guarded by ApiKeyGuard without one needs `admin` (fail closed). */
export const RequireScope = (scope: ApiScope) => SetMetadata(SCOPE, scope);

const UNMASKABLE = 'ledger:unmaskable';
/**
 * A `read` route whose answer cannot be masked without losing its point (the audit export: masked values would no
 * longer hash): refused to `read-masked` keys.
 */
export const NotForMaskedKeys = () => SetMetadata(UNMASKABLE, true);

/** Who called: the key's name (never the key), for the audit records of imports and admin actions. */
export interface Actor {
  name: string;
  scopes: readonly ApiScope[];
  /** A `read-masked` key on a read route: every number it is served is masked (masking.hook.ts). */
  masked: boolean;
}
export type AuthenticatedRequest = FastifyRequest & { actor?: Actor };

/** Refused API keys per remote address, apart from the webhook signature failures (same rules). */
export class ApiKeyFailureLimiter extends SignatureFailureLimiter {}

/**
 * Every configured key is compared, in constant time, whatever the candidate: neither the time nor an early
 * exit says which key (or whether any) matched.
 */
export const findApiKey = (candidate: string, keys: readonly ApiKey[]): ApiKey | null => {
  let found: ApiKey | null = null;
  for (const k of keys) if (constantTimeEqual(candidate, k.key) && found === null) found = k;
  return found;
};

/**
 * `Authorization: Bearer <key>` against LEDGER_API_KEYS, then the route's scope (403 AUTH.FORBIDDEN_SCOPE).
 * An address that keeps sending wrong keys is refused altogether (429, even with a right key) until its window ends.
 */
@Injectable()
export class ApiKeyGuard implements CanActivate {
  constructor(
    @Inject(LEDGER_CONFIG) private readonly config: LedgerConfig,
    private readonly reflector: Reflector,
    private readonly limiter: ApiKeyFailureLimiter,
  ) {}

  canActivate(context: ExecutionContext): boolean {
    const req = context.switchToHttp().getRequest<AuthenticatedRequest>();
    const address = req.ip ?? 'unknown';
    const wait = this.limiter.blockedFor(address);
    if (wait !== null) throw rateLimited(`too many refused API keys from this address; retry in ${wait} s`, wait);
    if (this.config.apiKeys.length === 0) throw unauthorized('no API keys are configured (LEDGER_API_KEYS): this route is closed');
    const header = req.headers.authorization;
    const match = typeof header === 'string' ? /^Bearer\s+(.+)$/i.exec(header.trim()) : null;
    // Or the key a console session was opened with (the console's hook attaches it only when no Authorization header came).
    const candidate = match ? match[1]! : sessionKeyFromCookie(req);
    const key = candidate !== null ? findApiKey(candidate, this.config.apiKeys) : null;
    if (!key) {
      this.limiter.recordFailure(address);
      throw unauthorized();
    }
    const scope = this.reflector.getAllAndOverride<ApiScope | undefined>(SCOPE, [context.getHandler(), context.getClass()]) ?? 'admin';
    // A read route is open to a read-masked key, masked, unless it cannot be (NotForMaskedKeys).
    const masked = scope === 'read' && !key.scopes.includes('read') && key.scopes.includes('read-masked');
    if (masked && this.reflector.getAllAndOverride<boolean | undefined>(UNMASKABLE, [context.getHandler(), context.getClass()])) throw forbiddenScope(key.name, scope);
    if (!key.scopes.includes(scope) && !masked) throw forbiddenScope(key.name, scope);
    req.actor = { name: key.name, scopes: key.scopes, masked };
    return true;
  }
}
