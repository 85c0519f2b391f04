import { Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { map, type Observable } from 'rxjs';
import { maskDocument } from '@lib/ledger';
import type { AuthenticatedRequest } from './api-key.guard.js';

/**
 * Every JSON answer to a `read-masked` key goes out with its numbers masked (libs/ledger masking.ts): one place
 * for every read route and the console's calls to them, so that a new route cannot forget. Streamed answers (the
 * exports) are not JSON documents: they mask their own rows (ExportCallsQuery), or refuse masked keys.
 */
@Injectable()
export class MaskingInterceptor implements NestInterceptor {
  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const req = context.switchToHttp().getRequest<AuthenticatedRequest | undefined>();
    if (!req?.actor?.masked) return next.handle();
    return next.handle().pipe(map((body: unknown) => (body !== null && typeof body === 'object' && typeof (body as { getStream?: unknown }).getStream !== 'function' ? maskDocument(body) : body)));
  }
}
