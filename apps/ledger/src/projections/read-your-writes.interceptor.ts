import { Injectable, SetMetadata, type CallHandler, type ExecutionContext, type NestInterceptor } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { from, Observable, switchMap } from 'rxjs';
import { badRequest, LedgerError } from '@lib/ledger';
import { Projector } from '@lib/projections';
import type { FastifyRequest } from 'fastify';
import { isPositionText } from '../common/api-schema.js';
import { ReadReplicaService } from '../replica/read-replica.service.js';

export const MIN_POSITION_WAIT_MS = 3_000;

const READS_REPLICA = 'ledger:reads-replica';

/**
 * Marks a controller whose repositories read through READ_DATABASE (the replica when DATABASE_READ_URL is set):
 * its minPosition is then awaited on that server, and the whole request is pinned to it.
 */
export const ReadsReplica = () => SetMetadata(READS_REPLICA, true);

/**
 * `?minPosition=<position from an ingest receipt>` on any query route: answer only once every projection
 * has applied that position on the server the route reads, or 503 with Retry-After after a few seconds:
 * `PROJECTION.LAGGING` when the projector itself is behind, `READ.REPLICA_LAGGING` when the primary has it and
 * the replica has not replayed it yet.
 */
@Injectable()
export class ReadYourWritesInterceptor implements NestInterceptor {
  constructor(
    private readonly projector: Projector,
    private readonly replica: ReadReplicaService,
    private readonly reflector: Reflector,
  ) {}

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const req = context.switchToHttp().getRequest<FastifyRequest>();
    const raw = (req.query as Record<string, unknown> | undefined)?.minPosition;
    if (raw !== undefined && !isPositionText(raw)) {
      throw badRequest('QUERY.INVALID_PARAMETER', 'invalid query parameter "minPosition": must be a position from an ingest receipt (digits, at most 9223372036854775807)');
    }
    const replicaRoute = this.replica.configured && this.reflector.getAllAndOverride<boolean>(READS_REPLICA, [context.getHandler(), context.getClass()]);
    if (!replicaRoute) {
      if (raw === undefined) return next.handle();
      return from(this.projector.waitFor(raw, MIN_POSITION_WAIT_MS)).pipe(
        switchMap((ok) => {
          if (!ok) throw lagging(raw);
          return next.handle();
        }),
      );
    }
    // Subscribed inside the pin, so that the handler's queries (async work started from here) run on the server
    // the check ran on.
    return new Observable((subscriber) =>
      this.replica.pinned(() => {
        const handled = raw === undefined ? next.handle() : from(this.awaitOnReadServer(raw)).pipe(switchMap(() => next.handle()));
        return handled.subscribe(subscriber);
      }),
    );
  }

  private async awaitOnReadServer(position: string): Promise<void> {
    if (this.replica.current() === 'unavailable') throw new LedgerError('READ.REPLICA_UNAVAILABLE', 'the read replica is unavailable, retry shortly', { retryAfterSec: 1 });
    if (await this.projector.waitFor(position, MIN_POSITION_WAIT_MS, this.replica.db)) return;
    // Still on the replica (it may have failed over to the primary meanwhile) and the primary has it: the replica lags.
    if (this.replica.current() === 'replica' && (await this.projector.hasPassed(position))) {
      throw new LedgerError('READ.REPLICA_LAGGING', `the read replica has not replayed position ${position} yet`, { retryAfterSec: this.replica.retryAfterSec() });
    }
    throw lagging(position);
  }
}

const lagging = (position: string) => new LedgerError('PROJECTION.LAGGING', `projections have not reached position ${position} yet`, { retryAfterSec: 1 });
