import { Query, QueryHandler, type IQueryHandler } from '@nestjs/cqrs';
import { buildCallTree, matchIntent, type CallTreeNode, type Provider, type StoredDialRequest } from '@lib/ledger';
import { toCallTreeDto } from './call-leg.mapper.js';
import type { CallTreeDto } from './calls.dto.js';
import { CallsRepository } from './calls.repository.js';
import type { DiscrepancyDto, LegIntentDto } from './intent.dto.js';
import { pickLeg } from './resolve-leg.js';

export class GetCallTreeQuery extends Query<CallTreeDto> {
  constructor(
    readonly callId: string,
    readonly provider?: Provider,
  ) {
    super();
  }
}

/** Every leg's discrepancies in the tree, depth first from the root; `kind` keeps one kind. */
export class GetCallDiscrepanciesQuery extends Query<{ data: DiscrepancyDto[] }> {
  constructor(
    readonly callId: string,
    readonly provider?: Provider,
    readonly kind?: string,
  ) {
    super();
  }
}

@QueryHandler(GetCallTreeQuery)
export class GetCallTreeHandler implements IQueryHandler<GetCallTreeQuery> {
  constructor(private readonly repo: CallsRepository) {}

  async execute({ callId, provider }: GetCallTreeQuery): Promise<CallTreeDto> {
    // The tree's legs and its legs' answers in parallel: one round trip of waiting instead of two.
    const [rows, events] = await Promise.all([this.repo.treesOf(callId, provider), this.repo.treeIntentEvents(callId, provider)]);
    const leg = pickLeg(callId, provider, rows.filter((r) => r.isTarget).map((r) => r.leg));
    const legs = rows.filter((r) => r.leg.provider === leg.provider).map((r) => r.leg);
    const roots = buildCallTree(legs);
    const intents = this.intents(roots, events.filter((e) => e.provider === leg.provider));
    return toCallTreeDto(roots, (id) => intents.get(id) ?? null);
  }

  /**
   * Intent beside outcome (tee mode): each leg with recorded answers gets them, its dial requests with the
   * child legs their targets became, and the discrepancies found (libs/ledger intent.ts). A leg whose app
   * was never teed has no intent (null), so nothing is flagged on it.
   */
  private intents(root: CallTreeNode, events: Awaited<ReturnType<CallsRepository['treeIntentEvents']>>): Map<string, LegIntentDto> {
    const nodes: CallTreeNode[] = [];
    const walk = (n: CallTreeNode) => {
      nodes.push(n);
      n.children.forEach(walk);
    };
    walk(root);
    const out = new Map<string, LegIntentDto>();
    for (const node of nodes) {
      const mine = events.filter((e) => e.callId === node.callId);
      const answers = mine.filter((e) => e.type === 'AppAnswered');
      if (answers.length === 0) continue;
      const requests: StoredDialRequest[] = mine
        .filter((e) => e.type === 'DialRequested')
        .map((e) => ({ ...e.data, position: e.position, answeredAt: e.receivedAt.toISOString() }));
      const told = mine.filter((e) => e.type === 'DialCompleted').map((e) => ({ childLegId: e.data.childLegId ?? null, outcome: String(e.data.outcome) }));
      const { matches, discrepancies } = matchIntent(
        node.callId,
        requests,
        node.children.map((c) => ({ callId: c.callId, to: c.to, status: c.status, ringDurationSec: c.ringDurationSec, final: c.final })),
        told,
      );
      out.set(node.callId, {
        answers: answers.map((e) => ({
          position: e.position,
          answeredAt: e.receivedAt.toISOString(),
          answersReceiptId: e.data.answersReceiptId ?? null,
          path: e.data.path,
          outcome: e.data.outcome,
          status: e.data.status ?? null,
          parse: e.data.parse,
          instructions: e.data.instructions ?? [],
        })),
        dials: matches.map((m) => ({
          position: m.request.position,
          verb: m.request.verb,
          mode: m.request.mode,
          ringTimeoutSec: m.request.ringTimeoutSec,
          defaultRingTimeoutSec: m.request.defaultRingTimeoutSec,
          timeLimitSec: m.request.timeLimitSec,
          callerId: m.request.callerId,
          amd: m.request.amd,
          record: m.request.record,
          hooks: m.request.hooks,
          targets: m.children.map((c) => ({ ...c.target, childLegIds: c.childLegIds })),
        })),
        discrepancies,
      });
    }
    return out;
  }
}

@QueryHandler(GetCallDiscrepanciesQuery)
export class GetCallDiscrepanciesHandler implements IQueryHandler<GetCallDiscrepanciesQuery> {
  constructor(private readonly trees: GetCallTreeHandler) {}

  async execute({ callId, provider, kind }: GetCallDiscrepanciesQuery): Promise<{ data: DiscrepancyDto[] }> {
    const tree = await this.trees.execute(new GetCallTreeQuery(callId, provider));
    const data: DiscrepancyDto[] = [];
    const walk = (n: CallTreeDto) => {
      for (const d of n.intent?.discrepancies ?? []) if (!kind || d.kind === kind) data.push(d);
      n.children.forEach(walk);
    };
    walk(tree);
    return { data };
  }
}
