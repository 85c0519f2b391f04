import { createHash } from 'node:crypto';
import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import { appAnswersStreamName, chainReceiptOf, SIGNATURE_HEADERS, verifyStreamChain, type BrokenLink, type StoredChainLink } from '@lib/event-store';
import type { Provider } from '@lib/ledger';
import type { CallEventDto } from './calls.dto.js';
import { CallsRepository, streamOf, type StoredEventRow } from './calls.repository.js';
import { encodeRawBody } from './raw-body.js';
import { resolveLeg } from './resolve-leg.js';

export interface CallEvents {
  data: CallEventDto[];
  chain: { valid: boolean };
}


/**
 * A full signature is never served (it would let a reader replay the delivery within its window, and for
 * Twilio for ever): a fingerprint identifies it against the stored header or an audit export instead.
 */
export const signatureFingerprint = (header: string | undefined): string | null =>
  header === undefined ? null : `sha256:${createHash('sha256').update(header, 'utf8').digest('hex').slice(0, 16)}`;

/** The kept headers as served: a signature header only as its fingerprint, like `signature.header`. */
const servedHeaders = (headers: Record<string, string>): Record<string, string> =>
  Object.fromEntries(
    Object.entries(headers).map(([name, value]) => [name, (SIGNATURE_HEADERS as readonly string[]).includes(name.toLowerCase()) ? signatureFingerprint(value)! : value]),
  );

const toLink = (r: StoredEventRow): StoredChainLink => ({
  chainVersion: r.chain_version,
  receipt: chainReceiptOf(r),
  position: r.position,
  eventId: r.event_id,
  streamName: r.stream_name,
  streamVersion: r.stream_version,
  type: r.type,
  schemaVersion: r.schema_version,
  data: r.data,
  metadata: r.metadata,
  receiptId: r.receipt_id,
  receivedAt: r.received_at.toISOString(),
  occurredAt: r.occurred_at ? r.occurred_at.toISOString() : null,
  prevHash: r.prev_hash,
  hash: r.hash,
  bodySha256: r.body_sha256,
  actualBodySha256: r.actual_body_sha256,
});

/** The first broken link of each listed stream (recomputed from its first event), by stream name; absent when it verifies. */
export const brokenLinks = (rows: readonly StoredEventRow[]): Map<string, BrokenLink> => {
  const byStream = new Map<string, StoredChainLink[]>();
  for (const r of rows) (byStream.get(r.stream_name) ?? byStream.set(r.stream_name, []).get(r.stream_name)!).push(toLink(r));
  const broken = new Map<string, BrokenLink>();
  for (const [stream, links] of byStream) {
    const b = verifyStreamChain(links.sort((a, b) => a.streamVersion - b.streamVersion));
    if (b) broken.set(stream, b);
  }
  return broken;
};

/** Every listed stream must recompute from its first event: the rows come in position order, chains in version order. */
export const chainsValid = (rows: readonly StoredEventRow[]): boolean => brokenLinks(rows).size === 0;

/**
 * Whether the chain verifies up to and including this event: links before a stream's first break do; the break
 * and what follows it do not (one break makes every later hash unprovable).
 */
const linkVerifies = (r: StoredEventRow, broken: Map<string, BrokenLink>): boolean => {
  const b = broken.get(r.stream_name);
  return !b || r.stream_version < b.streamVersion;
};

/**
 * Tee mode: each answer's events right after the events of the delivery they answered, whatever their positions.
 * The answer is written after the provider has its reply, by a writer of its own, so another delivery of the call
 * may be committed between the two. An answer whose delivery is not in the list stays where its position puts it.
 */
export const answersAfterTheirDeliveries = <R extends Pick<StoredEventRow, 'receipt_id' | 'source' | 'data'>>(rows: readonly R[]): R[] => {
  const answered = (r: R) => (r.source === 'answer' ? ((r.data as { answersReceiptId?: string | null }).answersReceiptId ?? null) : null);
  const lastOf = new Map<string, number>();
  rows.forEach((r, i) => {
    if (r.source !== 'answer') lastOf.set(r.receipt_id, i);
  });
  const after = new Map<number, R[]>();
  const out: R[] = [];
  const placed = new Set<R>();
  for (const r of rows) {
    const a = answered(r);
    const at = a === null ? undefined : lastOf.get(a);
    if (at === undefined) continue;
    (after.get(at) ?? after.set(at, []).get(at)!).push(r);
    placed.add(r);
  }
  rows.forEach((r, i) => {
    if (!placed.has(r)) out.push(r);
    out.push(...(after.get(i) ?? []));
  });
  return out;
};

export class GetCallEventsQuery extends Query<CallEvents> {
  constructor(
    readonly callId: string,
    readonly provider: Provider | undefined,
    readonly tree: boolean,
  ) {
    super();
  }
}

@QueryHandler(GetCallEventsQuery)
export class GetCallEventsHandler implements IQueryHandler<GetCallEventsQuery> {
  constructor(private readonly repo: CallsRepository) {}

  async execute({ callId, provider, tree }: GetCallEventsQuery): Promise<CallEvents> {
    const leg = await resolveLeg(this.repo, callId, provider);
    const legs = tree ? await this.repo.treeLegs(leg.provider, leg.rootCallId) : [leg];
    // Tee mode: each leg's app answers come in position order right after the delivery they answered.
    const callOf = new Map(legs.flatMap((l) => [[streamOf(l.provider, l.callId), l.callId] as const, [appAnswersStreamName(l.provider, l.callId), l.callId] as const]));
    const rows = answersAfterTheirDeliveries(await this.repo.streamEvents([...callOf.keys()]));
    const broken = brokenLinks(rows);
    return {
      data: rows.map((r) => ({
        position: r.position,
        callId: callOf.get(r.stream_name)!,
        streamVersion: r.stream_version,
        type: r.type,
        data: r.data,
        receivedAt: r.received_at.toISOString(),
        occurredAt: r.occurred_at ? r.occurred_at.toISOString() : null,
        hash: r.hash.toString('hex'),
        chainVerified: linkVerifies(r, broken),
        ...(r.source === 'answer' ? { answers: (r.data as { answersReceiptId?: string | null }).answersReceiptId ?? null } : {}),
        receipt: {
          id: r.receipt_id,
          path: r.path,
          contentType: r.content_type,
          ...encodeRawBody(r.body),
          signature: {
            status: r.signature_status,
            timestamp: r.signature_timestamp ? r.signature_timestamp.toISOString() : null,
            header: signatureFingerprint(SIGNATURE_HEADERS.map((h) => r.headers[h]).find((v) => v !== undefined)),
          },
          headers: servedHeaders(r.headers),
        },
      })),
      chain: { valid: broken.size === 0 },
    };
  }
}
