import { Injectable, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { from, switchMap, type Observable } from 'rxjs';
import { badRequest, LedgerError } from '@lib/ledger';
import { Projector } from '@lib/projections';
import type { FastifyRequest } from 'fastify';
import { isPositionText } from '../common/api-schema.js';

export const MIN_POSITION_WAIT_MS = 3_000;

/**
 * `?minPosition=<position from an ingest receipt>` on any query route: answer only once every projection
 * has applied that position, or 503 with Retry-After after a few seconds.
 */
@Injectable()
export class ReadYourWritesInterceptor implements NestInterceptor {
  constructor(private readonly projector: Projector) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const req = context.switchToHttp().getRequest<FastifyRequest>();
    const raw = (req.query as Record<string, unknown> | undefined)?.minPosition;
    if (raw === undefined) return next.handle();
    if (!isPositionText(raw)) {
      throw badRequest('QUERY.INVALID_PARAMETER', 'invalid query parameter "minPosition": must be a position from an ingest receipt (digits, at most 9223372036854775807)');
    }
    return from(this.projector.waitFor(raw, MIN_POSITION_WAIT_MS)).pipe(
      switchMap((ok) => {
        if (!ok) {
          throw new LedgerError('PROJECTION.LAGGING', `projections have not reached position ${raw} yet`, { retryAfterSec: 1 });
        }
        return next.handle();
      }),
    );
  }
}
