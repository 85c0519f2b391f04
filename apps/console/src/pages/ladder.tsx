import { forwardRef } from 'react';
import type { CallEventDto, CallLegDto } from '../api.js';

export type Clock = 'receive' | 'provider';

/** One delivery on one leg: the events a single receipt appended to that leg's stream. */
export interface Delivery {
  key: string;
  callId: string;
  events: CallEventDto[];
  /** The same event types arrived before on this leg: a retry or a repeated report. */
  repeat: boolean;
  /**
   * Tee mode: this is the app's answer (its AppAnswered and DialRequested events), not a delivery; `to` is the key
   * of the delivery it answered (null when that delivery could not be stored or is not on this page).
   */
  answer?: { to: string | null };
  /** The app's answer to this delivery, when one was recorded. */
  answeredBy?: string;
}

/** The content type of an app answer's receipt (tee mode; apps/ledger/src/tee/answer-record.factory.ts). */
export const ANSWER_CONTENT_TYPE = 'application/vnd.call-ledger.app-answer+json';

export const deliveriesOf = (events: CallEventDto[]): Delivery[] => {
  const byKey = new Map<string, Delivery>();
  for (const e of events) {
    const key = `${e.callId}|${e.receipt.id}`;
    const d = byKey.get(key) ?? byKey.set(key, { key, callId: e.callId, events: [], repeat: false }).get(key)!;
    d.events.push(e);
  }
  for (const d of byKey.values()) {
    if (d.events[0]!.receipt.contentType !== ANSWER_CONTENT_TYPE) continue;
    const answered = d.events.map((e) => e.answers).find((a) => a);
    const to = answered ? `${d.callId}|${answered}` : null;
    const delivery = to === null ? undefined : byKey.get(to);
    d.answer = { to: delivery ? to : null };
    if (delivery) delivery.answeredBy = d.key;
  }
  const seen = new Set<string>();
  for (const d of byKey.values()) {
    if (d.answer) continue;
    const sig = `${d.callId}|${d.events.map((e) => e.type).join(',')}`;
    d.repeat = seen.has(sig);
    seen.add(sig);
  }
  return [...byKey.values()];
};

/** What the ledger recorded of an app's answer (its receipt body is this envelope; answer-record.factory.ts). */
export interface AnswerEnvelope {
  answers: { receiptId: string | null; bodySha256: string; method: string; path: string };
  answeredAt: string;
  outcome: 'answered' | 'timeout' | 'unreachable' | 'too-large';
  error: string | null;
  status: number | null;
  headers: Record<string, string>;
  durationMs: number;
  body: string;
  bodyEncoding: 'utf8' | 'base64';
  bodySha256: string;
  redactions: { path: string; reason: string }[];
}

export const envelopeOf = (d: Delivery): AnswerEnvelope | null => {
  const { receipt } = d.events[0]!;
  if (receipt.bodyEncoding !== 'utf8') return null;
  try {
    return JSON.parse(receipt.body) as AnswerEnvelope;
  } catch {
    return null;
  }
};

/**
 * The time of a delivery on a clock; the provider's clock is its own event time, else the time it signed. An
 * answer has no provider time: on that clock it is drawn after the delivery it answered by the time the app took.
 */
export const timeOf = (d: Delivery, clock: Clock, byKey?: Map<string, Delivery>): { ms: number; known: boolean } => {
  const e = d.events[0]!;
  if (d.answer && clock === 'provider') {
    const answered = d.answer.to ? byKey?.get(d.answer.to) : undefined;
    if (answered) {
      const t = timeOf(answered, clock);
      return { ms: t.ms + (envelopeOf(d)?.durationMs ?? 0), known: t.known };
    }
    return { ms: Date.parse(e.receivedAt), known: false };
  }
  if (clock === 'receive') return { ms: Date.parse(e.receivedAt), known: true };
  const t = e.occurredAt ?? e.receipt.signature.timestamp;
  return t ? { ms: Date.parse(t), known: true } : { ms: Date.parse(e.receivedAt), known: false };
};

const LANE = 44;
const LEFT = 170;
const RIGHT = 30;
const TOP = 30;

/**
 * One lane per leg, every delivery a mark at its time on the chosen clock. A hollow mark has no provider time
 * (drawn at its receive time); a dashed ring marks a repeat. The app's answer (tee mode) is a violet diamond
 * under the lane, joined to the delivery it answered (hollow when the app did not answer).
 */
export const Ladder = forwardRef<
  SVGSVGElement,
  { legs: CallLegDto[]; deliveries: Delivery[]; clock: Clock; selected: Delivery | null; highlightLeg: string | null; onSelect: (d: Delivery) => void }
>(({ legs, deliveries, clock, selected, highlightLeg, onSelect }, ref) => {
  const width = Math.max(760, Math.min(1400, 200 + deliveries.length * 40));
  const height = TOP + legs.length * LANE + 30;
  const byKey = new Map(deliveries.map((d) => [d.key, d]));
  const at = new Map(deliveries.map((d) => [d.key, timeOf(d, clock, byKey)]));
  const times = [...at.values()].map((t) => t.ms);
  const min = Math.min(...times);
  const max = Math.max(...times);
  const span = Math.max(max - min, 1000);
  const x = (ms: number) => LEFT + ((ms - min) / span) * (width - LEFT - RIGHT);
  const lane = new Map(legs.map((l, i) => [l.callId, i]));
  const ticks = Array.from({ length: 5 }, (_, i) => min + (span * i) / 4);
  return (
    <div className="ladder">
      <svg ref={ref} xmlns="http://www.w3.org/2000/svg" width={width} height={height} viewBox={`0 0 ${width} ${height}`} role="group" aria-label={`Ladder on the ${clock} clock`} data-testid="ladder">
        <style>{'text{font:11px system-ui,sans-serif;fill:#1b1f24} .t{fill:#57606a}'}</style>
        {ticks.map((t) => (
          <g key={t}>
            <line x1={x(t)} x2={x(t)} y1={TOP - 8} y2={height - 20} stroke="#eaeef2" />
            <text className="t" x={x(t)} y={height - 6} textAnchor="middle">
              {new Date(t).toISOString().slice(11, 23)}
            </text>
          </g>
        ))}
        {legs.map((l, i) => (
          <g key={l.callId} data-lane={l.callId}>
            <rect x={0} y={TOP + i * LANE - LANE / 2 + 4} width={width} height={LANE - 8} fill={highlightLeg === l.callId ? '#eef5fc' : 'transparent'} />
            <text x={8 + 8 * l.depth} y={TOP + i * LANE + 4}>
              {l.callId.length > 22 ? `${l.callId.slice(0, 21)}…` : l.callId}
            </text>
            <line x1={LEFT} x2={width - RIGHT} y1={TOP + i * LANE} y2={TOP + i * LANE} stroke="#8c959f" />
          </g>
        ))}
        {deliveries.map((d) => {
          const { ms, known } = at.get(d.key)!;
          const laneY = TOP + (lane.get(d.callId) ?? 0) * LANE;
          const pressed = selected?.key === d.key;
          const select = {
            role: 'button',
            tabIndex: 0,
            'aria-pressed': pressed,
            'data-position': d.events[0]!.position,
            'data-call-id': d.callId,
            'data-x': x(ms).toFixed(2),
            onClick: () => onSelect(d),
            onKeyDown: (e: React.KeyboardEvent) => {
              if (e.key === 'Enter' || e.key === ' ') {
                e.preventDefault();
                onSelect(d);
              }
            },
          } as const;
          if (d.answer) {
            // The app's answer: a diamond under the lane, tied to the delivery it answered.
            const env = envelopeOf(d);
            const app = d.events.find((e) => e.type === 'AppAnswered');
            const instructions = ((app?.data as { instructions?: string[] } | undefined)?.instructions ?? []).join(', ');
            const y = laneY + 14;
            const to = d.answer.to ? byKey.get(d.answer.to) : undefined;
            const label = `App answer on ${d.callId}${to ? ` to ${to.events.map((e) => e.type).join(', ')}` : ''}: ${env?.outcome ?? 'answer'}${env?.status ? ` HTTP ${env.status}` : ''}${env ? ` in ${env.durationMs} ms` : ''}${instructions ? `, ${instructions}` : ''}`;
            return (
              <g key={d.key} className="mark answer" aria-label={label} data-answer-to={to?.events[0]!.position ?? ''} {...select}>
                <title>{label}</title>
                {to && <line x1={x(at.get(to.key)!.ms)} y1={laneY + 7} x2={x(ms)} y2={y - 5} stroke="#8250df" strokeDasharray="2 2" />}
                <rect x={x(ms) - 5} y={y - 5} width={10} height={10} transform={`rotate(45 ${x(ms)} ${y})`} fill={env?.outcome === 'answered' ? '#8250df' : '#fff'} stroke="#8250df" strokeWidth={2} />
              </g>
            );
          }
          const label = `${d.events.map((e) => e.type).join(', ')} on ${d.callId} at ${new Date(ms).toISOString()}${known ? '' : ' (no provider time: receive time shown)'}${d.repeat ? ', repeated' : ''}${d.answeredBy ? ', answered by the app' : ''}`;
          return (
            <g key={d.key} className="mark" aria-label={label} {...select}>
              <title>{label}</title>
              <circle cx={x(ms)} cy={laneY} r={7} fill={known ? (d.events[0]!.receipt.signature.status === 'unverified' ? '#b42318' : '#0b5cad') : '#fff'} stroke="#0b5cad" strokeWidth={2} />
              {d.repeat && <circle cx={x(ms)} cy={laneY} r={11} fill="none" stroke="#9a6700" strokeDasharray="3 2" />}
              <text x={x(ms)} y={laneY - 11} textAnchor="middle" className="t">
                {d.events[0]!.type.replace(/^Call/, '')}
              </text>
            </g>
          );
        })}
      </svg>
    </div>
  );
});
Ladder.displayName = 'Ladder';
