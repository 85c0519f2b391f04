import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import { toCallLegDto } from '../calls/call-leg.mapper.js';
import { maskDocument } from '@lib/ledger';
import type { CallLegDto, ExportCallsQueryParams } from '../calls/calls.dto.js';
import { CallsRepository } from '../calls/calls.repository.js';
import { normalizeCallFilters } from '../calls/list-calls.query.js';
import { callCsvHeader, callCsvLine } from './call-csv.js';

export class ExportCallsQuery extends Query<AsyncIterable<string>> {
  constructor(
    readonly params: ExportCallsQueryParams,
    /** A read-masked key: each leg's numbers masked before it is written (README "Masking in reads"). */
    readonly masked = false,
  ) {
    super();
  }
}

/**
 * Every matching leg, in the order of /v1/calls, as text chunks of one keyset batch each. The iterable is
 * pulled by the response stream, so a slow client stops the reads (memory stays at about one batch).
 */
@QueryHandler(ExportCallsQuery)
export class ExportCallsHandler implements IQueryHandler<ExportCallsQuery> {
  /** Legs per database round trip (tests lower it to cross batch boundaries with few rows). */
  batchSize = 1000;

  constructor(private readonly repo: CallsRepository) {}

  async execute({ params, masked }: ExportCallsQuery): Promise<AsyncIterable<string>> {
    const filters = normalizeCallFilters(params);
    const { repo, batchSize } = this;
    const line = params.format === 'csv' ? callCsvLine : (leg: Parameters<typeof callCsvLine>[0]) => `${JSON.stringify(leg)}\n`;
    return (async function* () {
      if (params.format === 'csv') yield callCsvHeader();
      let after = null;
      for (;;) {
        const { legs, keys } = await repo.listLegs(filters, after, batchSize);
        const batch = legs.slice(0, batchSize);
        if (batch.length > 0) yield batch.map((l) => line(masked ? (maskDocument(toCallLegDto(l)) as CallLegDto) : toCallLegDto(l))).join('');
        if (legs.length <= batchSize) return;
        after = keys[batchSize - 1]!;
      }
    })();
  }
}
