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
}

export const deliveriesOf = (events: CallEventDto[]): Delivery[] => {
  const byKey = new Map<string, Delivery>();
  for (const e of events) {
    const key = `${e.callId}|${e.receipt.id}`;
    const d = byKey.get(key) ?? byKey.set(key, { key, callId: e.callId, events: [], repeat: false }).get(key)!;
    d.events.push(e);
  }
  const seen = new Set<string>();
  for (const d of byKey.values()) {
    const sig = `${d.callId}|${d.events.map((e) => e.type).join(',')}`;
    d.repeat = seen.has(sig);
    seen.add(sig);
  }
  return [...byKey.values()];
};

/** The time of a delivery on a clock; the provider's clock is its own event time, else the time it signed. */
export const timeOf = (d: Delivery, clock: Clock): { ms: number; known: boolean } => {
  const e = d.events[0]!;
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
 * (drawn at its receive time); a dashed ring marks a repeat. Room is left under each mark for the app's answer.
 */
export const Ladder = forwardRef<
  SVGSVGElement,
  { legs: CallLegDto[]; deliveries: Delivery[]; clock: Clock; selected: Delivery | null; highlightLeg: string | null; onSelect: (d: Delivery) => void }
>(({ legs, deliveries, clock, selected, highlightLeg, onSelect }, ref) => {
  const width = Math.max(760, Math.min(1400, 200 + deliveries.length * 40));
  const height = TOP + legs.length * LANE + 30;
  const times = deliveries.map((d) => timeOf(d, clock).ms);
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
          const { ms, known } = timeOf(d, clock);
          const y = TOP + (lane.get(d.callId) ?? 0) * LANE;
          const label = `${d.events.map((e) => e.type).join(', ')} on ${d.callId} at ${new Date(ms).toISOString()}${known ? '' : ' (no provider time: receive time shown)'}${d.repeat ? ', repeated' : ''}`;
          const pressed = selected?.key === d.key;
          return (
            <g
              key={d.key}
              className="mark"
              role="button"
              tabIndex={0}
              aria-label={label}
              aria-pressed={pressed}
              data-position={d.events[0]!.position}
              data-call-id={d.callId}
              data-x={x(ms).toFixed(2)}
              onClick={() => onSelect(d)}
              onKeyDown={(e) => {
                if (e.key === 'Enter' || e.key === ' ') {
                  e.preventDefault();
                  onSelect(d);
                }
              }}
            >
              <title>{label}</title>
              <circle cx={x(ms)} cy={y} r={7} fill={known ? (d.events[0]!.receipt.signature.status === 'unverified' ? '#b42318' : '#0b5cad') : '#fff'} stroke="#0b5cad" strokeWidth={2} />
              {d.repeat && <circle cx={x(ms)} cy={y} r={11} fill="none" stroke="#9a6700" strokeDasharray="3 2" />}
              <text x={x(ms)} y={y - 11} textAnchor="middle" className="t">
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
