/**
 * Tee mode in the simulator (issue 13): the simulated app behind the ledger answers each call's first delivery
 * about a leg that dials with the dial commands that lead to the child legs of the scenario, in its provider's
 * dialect (docs/app-answers.md: PerCL `OutDial`, the jambonz `dial` verb, RCML/TwiML `<Dial>`), and every other
 * delivery with an empty set of commands. What the app asked is known in advance, so the check compares the
 * ledger's intent on the call tree (`intent.dials`, `intent.discrepancies`) with it.
 *
 * One discrepancy is made on purpose: every fourth call that dials asks, in its first dial, for one more number
 * that the platform never rings (`target-not-attempted`). A child leg that no dial explains (a REST-created child
 * of a teed leg) is an `unexplained-child`.
 */
import type { Provider } from '@lib/ledger';
import type { Difference } from './check.js';
import type { SimCall, SimDial, SimLeg } from './scenario.js';

/** The ring timeout every simulated dial asks for: longer than any simulated ring (no `ring-over-timeout`). */
export const TEE_RING_TIMEOUT_SEC = 120;

/** The number the app asks for and the platform never rings, for the calls chosen to show the discrepancy. */
export const neverRungTarget = (call: SimCall): string | null => (call.dials.length > 0 && call.index % 4 === 0 ? `+1999555${String(call.index % 10_000).padStart(4, '0')}` : null);

export interface AppAnswer {
  contentType: string;
  body: string;
}

/** What the app answers when it has nothing to say: no command (the provider goes on or hangs up). */
export const emptyAnswer = (provider: Provider): AppAnswer =>
  provider === 'freeclimb' || provider === 'jambonz' ? { contentType: 'application/json', body: '[]' } : { contentType: 'text/xml', body: '<?xml version="1.0" encoding="UTF-8"?><Response></Response>' };

const legOf = (call: SimCall, id: string): SimLeg => call.legs.find((l) => l.callId === id)!;

/** Dial commands of one leg, one per scenario dial, in the dialect of the call's provider. */
export const dialAnswer = (call: SimCall, legId: string): AppAnswer | null => {
  const dials = call.dials.filter((d) => d.parentId === legId);
  if (dials.length === 0) return null;
  const extra = neverRungTarget(call);
  const targetsOf = (d: SimDial, i: number) => [...d.childIds.map((c) => legOf(call, c).to), ...(i === 0 && extra && call.dials[0] === d ? [extra] : [])];
  const from = legOf(call, legId).to;
  switch (call.provider) {
    case 'freeclimb':
      // OutDial rings one destination; a blast or a simultaneous ring is one OutDial per destination.
      return {
        contentType: 'application/json',
        body: JSON.stringify(
          dials.flatMap((d, i) =>
            targetsOf(d, i).map((destination) => ({
              OutDial: { destination, callingNumber: from, timeout: TEE_RING_TIMEOUT_SEC, ifMachine: 'redirect', callConnectUrl: '/freeclimb/connect', actionUrl: '/freeclimb/outdial' },
            })),
          ),
        ),
      };
    case 'jambonz':
      return {
        contentType: 'application/json',
        body: JSON.stringify(
          dials.map((d, i) => ({ verb: 'dial', callerId: from, answerOnBridge: true, timeout: TEE_RING_TIMEOUT_SEC, actionHook: '/jambonz/dial-action', target: targetsOf(d, i).map((number) => ({ type: 'phone', number })) })),
        ),
      };
    case 'twilio':
    case 'restcomm':
      return {
        contentType: 'text/xml',
        body:
          '<?xml version="1.0" encoding="UTF-8"?><Response>' +
          dials.map((d, i) => `<Dial timeout="${TEE_RING_TIMEOUT_SEC}" callerId="${from}" action="/${call.provider}/dial-action">${targetsOf(d, i).map((n) => `<Number>${n}</Number>`).join('')}</Dial>`).join('') +
          '</Response>',
      };
  }
};

/** The leg a delivery is about, read as the ledger reads it: FreeClimb `callId`, jambonz `call_sid`, RCML `CallSid`. */
export const deliveryLegId = (provider: Provider, body: string, query: string): string | null => {
  if (provider === 'freeclimb' || provider === 'jambonz') {
    try {
      const j = JSON.parse(body) as Record<string, unknown>;
      const id = provider === 'freeclimb' ? j.callId : j.call_sid;
      return typeof id === 'string' ? id : null;
    } catch {
      return null;
    }
  }
  return new URLSearchParams(body || query).get('CallSid');
};

/**
 * The simulated app: answers the first delivery about each dialling leg with its dial commands, everything else
 * with no command. Stateful (first delivery only), as an app that runs its call flow once per call.
 */
export class SimulatedApp {
  private readonly byLeg = new Map<string, SimCall>();
  private readonly answered = new Set<string>();
  constructor(calls: readonly SimCall[]) {
    for (const c of calls) for (const d of c.dials) this.byLeg.set(d.parentId, c);
  }
  answer(provider: Provider, body: string, query: string): AppAnswer {
    const leg = deliveryLegId(provider, body, query);
    const call = leg === null ? undefined : this.byLeg.get(leg);
    if (!call || this.answered.has(leg!)) return emptyAnswer(provider);
    this.answered.add(leg!);
    return dialAnswer(call, leg!) ?? emptyAnswer(provider);
  }
}

export interface ExpectedIntent {
  legId: string;
  /** Per dial command in order: each target and the child leg it became ([] for the number never rung). */
  dials: { targets: { value: string; childLegIds: string[] }[] }[];
  /** `kind:childLegId-or-target`, sorted. */
  discrepancies: string[];
}

/** What the ledger should show as intent on each dialling leg of a call (and what it should flag). */
export const expectIntent = (call: SimCall): ExpectedIntent[] => {
  const extra = neverRungTarget(call);
  // Every leg that dials or has children: a child that no dial explains (a REST-created one) is flagged on its parent.
  const parents = [...new Set([...call.dials.map((d) => d.parentId), ...call.legs.flatMap((l) => (l.parentCallId ? [l.parentCallId] : []))])];
  return parents.map((legId) => {
    const dials = call.dials.filter((d) => d.parentId === legId);
    const expanded = dials.flatMap((d, i) => {
      const targets = [...d.childIds.map((c) => ({ value: legOf(call, c).to, childLegIds: [c] })), ...(i === 0 && extra && call.dials[0] === d ? [{ value: extra, childLegIds: [] }] : [])];
      // PerCL: one OutDial (one dial request) per destination.
      return call.provider === 'freeclimb' ? targets.map((t) => ({ targets: [t] })) : [{ targets }];
    });
    const explained = new Set(dials.flatMap((d) => d.childIds));
    const discrepancies = [
      ...(extra && dials.includes(call.dials[0]!) ? [`target-not-attempted:${extra}`] : []),
      ...call.legs.filter((l) => l.parentCallId === legId && !explained.has(l.callId)).map((l) => `unexplained-child:${l.callId}`),
    ].sort();
    return { legId, dials: expanded, discrepancies };
  });
};

interface TreeNode {
  callId: string;
  intent?: { dials?: { targets?: { value: string; childLegIds: string[] }[] }[]; discrepancies?: { kind: string; childLegId?: string | null; target?: { value: string } | null }[] } | null;
  children?: TreeNode[];
}

const findNode = (node: TreeNode, id: string): TreeNode | null => {
  if (node.callId === id) return node;
  for (const c of node.children ?? []) {
    const f = findNode(c, id);
    if (f) return f;
  }
  return null;
};

/** Intent against outcome: each expected dial target attempted by the child leg it became, and exactly the expected discrepancies. */
export const diffIntent = (where: string, expected: readonly ExpectedIntent[], tree: unknown): Difference[] => {
  const out: Difference[] = [];
  for (const e of expected) {
    const node = findNode(tree as TreeNode, e.legId);
    const path = `${where} leg ${e.legId} intent`;
    if (!node) {
      out.push({ path, expected: 'leg in the tree', actual: 'missing' });
      continue;
    }
    if (!node.intent) {
      out.push({ path, expected: 'the app\'s answers (tee)', actual: node.intent ?? null });
      continue;
    }
    const dials = (node.intent.dials ?? []).map((d) => ({ targets: (d.targets ?? []).map((t) => ({ value: t.value, childLegIds: t.childLegIds })) }));
    if (JSON.stringify(dials) !== JSON.stringify(e.dials)) out.push({ path: `${path} dials`, expected: e.dials, actual: dials });
    const found = (node.intent.discrepancies ?? []).map((d) => `${d.kind}:${d.childLegId ?? d.target?.value ?? ''}`).sort();
    if (JSON.stringify(found) !== JSON.stringify(e.discrepancies)) out.push({ path: `${path} discrepancies`, expected: e.discrepancies, actual: found });
  }
  return out;
};
