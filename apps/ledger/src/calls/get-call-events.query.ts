import { createHash } from 'node:crypto';
import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import { appAnswersStreamName, ERASED, legStreamName, SIGNATURE_HEADERS, verifyStreamChain, type BrokenLink, type StoredChainLink, type StoredReceipt } from '@lib/event-store';
import { PROVIDERS, type Provider } from '@lib/ledger';
import type { CallEventDto } from './calls.dto.js';
import { CallsRepository } from './calls.repository.js';
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

type Row = { link: StoredChainLink; receipt: StoredReceipt };

/** The translator version an event was stored by: 0 for events from before versions were recorded (re-translation). */
const translationOf = (metadata: unknown): number => {
  const t = metadata !== null && typeof metadata === 'object' ? (metadata as Record<string, unknown>).translation : undefined;
  return typeof t === 'number' ? t : 0;
};

/** The delivery an answer receipt's AppAnswered event answers (its data as stored, served as it is). */
const answersReceiptIdOf = (data: unknown): string | null => {
  const id = data !== null && typeof data === 'object' ? (data as Record<string, unknown>).answersReceiptId : undefined;
  return typeof id === 'string' ? id : null;
};

/** The first broken link of each listed stream (recomputed from its first event), by stream name; absent when it verifies. */
export const brokenLinks = (rows: readonly Row[]): Map<string, BrokenLink> => {
  const byStream = new Map<string, StoredChainLink[]>();
  for (const { link } of rows) (byStream.get(link.streamName) ?? byStream.set(link.streamName, []).get(link.streamName)!).push(link);
  const broken = new Map<string, BrokenLink>();
  for (const [stream, links] of byStream) {
    const b = verifyStreamChain(links.sort((a, b) => a.streamVersion - b.streamVersion));
    if (b) broken.set(stream, b);
  }
  return broken;
};

/** Every listed stream must recompute from its first event: the rows come in position order, chains in version order. */
export const chainsValid = (rows: readonly Row[]): boolean => brokenLinks(rows).size === 0;

/**
 * Whether the chain verifies up to and including this event: links before a stream's first break do; the break
 * and what follows it do not (one break makes every later hash unprovable).
 */
const linkVerifies = (l: StoredChainLink, broken: Map<string, BrokenLink>): boolean => {
  const b = broken.get(l.streamName);
  return !b || l.streamVersion < b.streamVersion;
};

/**
 * Tee mode: each answer's events right after the events of the delivery they answered, whatever their positions.
 * The answer is written after the provider has its reply, by a writer of its own, so another delivery of the call
 * may be committed between the two. An answer whose delivery is not in the list stays where its position puts it.
 */
export const answersAfterTheirDeliveries = <R extends { link: Pick<StoredChainLink, 'data'>; receipt: Pick<StoredReceipt, 'id' | 'source'> }>(rows: readonly R[]): R[] => {
  const answered = (r: R) => (r.receipt.source === 'answer' ? answersReceiptIdOf(r.link.data) : null);
  const lastOf = new Map<string, number>();
  rows.forEach((r, i) => {
    if (r.receipt.source !== 'answer') lastOf.set(r.receipt.id, i);
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
    // Tee mode: each leg's app answers come in position order right after the delivery they answered.
    const streamsOf = (legs: readonly { provider: Provider; callId: string }[]) =>
      new Map(legs.flatMap((l) => [[legStreamName(l.provider, l.callId), l.callId] as const, [appAnswersStreamName(l.provider, l.callId), l.callId] as const]));
    let callOf: Map<string, string>;
    let rows: Awaited<ReturnType<CallsRepository['streamEvents']>>;
    if (tree) {
      const leg = await resolveLeg(this.repo, callId, provider);
      callOf = streamsOf(await this.repo.treeLegs(leg.provider, leg.rootCallId));
      rows = answersAfterTheirDeliveries(await this.repo.streamEvents([...callOf.keys()]));
    } else {
      // One leg: its streams are known from the call id for each provider it may belong to, so the events are
      // read beside the leg's lookup rather than after it (one round trip of waiting instead of two), and only
      // the resolved leg's are kept.
      const candidates = streamsOf((provider ? [provider] : PROVIDERS).map((p) => ({ provider: p, callId })));
      const [leg, all] = await Promise.all([resolveLeg(this.repo, callId, provider), this.repo.streamEvents([...candidates.keys()])]);
      callOf = streamsOf([leg]);
      rows = answersAfterTheirDeliveries(all.filter((r) => callOf.has(r.link.streamName)));
    }
    const broken = brokenLinks(rows);
    return {
      data: rows.map(({ link: l, receipt: r, supersededBy }) => ({
        position: l.position,
        callId: callOf.get(l.streamName)!,
        streamVersion: l.streamVersion,
        type: l.type,
        data: l.data,
        receivedAt: l.receivedAt,
        occurredAt: l.occurredAt,
        hash: l.hash.toString('hex'),
        chainVerified: linkVerifies(l, broken),
        ...(r.source === 'answer' ? { answers: answersReceiptIdOf(l.data) } : {}),
        translation:
          r.source === 'answer'
            ? null
            : { version: translationOf(l.metadata), supersededBy },
        receipt: {
          id: r.id,
          path: r.path,
          contentType: r.contentType,
          // An erased receipt's body is gone (its sha256 stays in the chain): the marker says so.
          ...(l.actualBodySha256 === null ? { body: ERASED, bodyEncoding: 'utf8' as const } : encodeRawBody(r.body)),
          signature: {
            status: r.signatureStatus,
            timestamp: r.signatureTimestamp ? r.signatureTimestamp.toISOString() : null,
            header: signatureFingerprint(SIGNATURE_HEADERS.map((h) => r.headers[h]).find((v) => v !== undefined)),
          },
          headers: servedHeaders(r.headers),
        },
      })),
      chain: { valid: broken.size === 0 },
    };
  }
}
