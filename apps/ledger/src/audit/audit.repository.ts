import { Injectable } from '@nestjs/common';
import { Database } from '@lib/db';
import { EventStoreRepository, streamNamesOfLeg } from '@lib/event-store';
import { PROVIDERS, type Provider } from '@lib/ledger';

export interface AuditScope {
  since?: string;
  until?: string;
  callId?: string;
  provider?: Provider;
}

/** The audit's scopes in terms of streams; the store (libs/event-store) answers them. */
@Injectable()
export class AuditRepository {
  private readonly store: EventStoreRepository;

  constructor(db: Database) {
    this.store = new EventStoreRepository(db);
  }

  /**
   * Names of the streams in scope, in name order, after `after`, at most `limit`. A time window selects the
   * streams that received an event in it (each then checked from its first event: a chain has no middle).
   * Tee mode: the app's answers on the provider's legs are the provider's too.
   */
  streamNames(scope: AuditScope, after: string | null, limit: number): Promise<string[]> {
    return this.store.readStreamNames(
      { names: scope.callId ? this.legStreamNames(scope) : undefined, provider: scope.provider, since: scope.since, until: scope.until },
      after,
      limit,
    );
  }

  /** The stream names a callId scope stands for (per provider, or the one asked): the leg's, and its app answers' (tee mode). */
  legStreamNames(scope: AuditScope): string[] {
    return streamNamesOfLeg(scope.provider ? [scope.provider] : [...PROVIDERS], scope.callId!);
  }

  /** Streams that have events but no head row (deleted to hide the stream from the walk over `streams`). */
  streamsWithoutHead(): Promise<{ streamName: string; position: string }[]> {
    return this.store.readStreamsWithoutHead();
  }
}
