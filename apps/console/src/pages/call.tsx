import { useEffect, useMemo, useRef, useState } from 'react';
import { get, qs, type CallEventDto, type CallEvents, type CallLegDto, type CallTreeDto } from '../api.js';
import { fmtSec, fmtTime, sourceMark } from '../format.js';
import { callHref, navigate, onLinkClick } from '../router.js';
import { Ladder, deliveriesOf, type Clock, type Delivery } from './ladder.js';

const TERMINAL = new Set(['completed', 'busy', 'no-answer', 'failed', 'canceled']);

/** What a partial leg still waits for, by the rule that makes a leg final (README › The call leg). */
export const missingOf = (leg: CallLegDto): string[] => {
  if (leg.final) return [];
  const missing: string[] = [];
  if (!TERMINAL.has(leg.status)) missing.push('the terminal event');
  if (leg.answeredAt && leg.durationSource.talk !== 'provider') missing.push("the provider's talk duration");
  return missing.length ? missing : ['more events'];
};

/** Post-dial delay: from the leg's start to its first ringing event, on the receive clock. */
const pddOf = (leg: CallLegDto, events: CallEventDto[]): number | null => {
  const ring = events.find((e) => e.callId === leg.callId && e.type === 'CallRinging');
  if (!ring || !leg.startedAt) return null;
  const ms = Date.parse(ring.occurredAt ?? ring.receivedAt) - Date.parse(leg.startedAt);
  return ms >= 0 ? ms / 1000 : null;
};

export const flattenTree = (t: CallTreeDto): CallTreeDto[] => [t, ...t.children.flatMap(flattenTree)];

const download = (name: string, type: string, content: string) => {
  const url = URL.createObjectURL(new Blob([content], { type }));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 1000);
};

export const CallPage = ({ callId, search }: { callId: string; search: URLSearchParams }) => {
  const provider = search.get('provider') ?? undefined;
  const selectedLeg = search.get('leg');
  const selectedEvent = search.get('event');
  const clock: Clock = search.get('clock') === 'provider' ? 'provider' : 'receive';
  const [tree, setTree] = useState<CallTreeDto | null>(null);
  const [events, setEvents] = useState<CallEvents | null>(null);
  const [error, setError] = useState<string | null>(null);
  const ladderRef = useRef<SVGSVGElement>(null);

  useEffect(() => {
    let stop = false;
    setTree(null);
    setEvents(null);
    setError(null);
    const p = provider ? { provider } : {};
    Promise.all([get<CallTreeDto>(`/v1/calls/${encodeURIComponent(callId)}/tree${qs(p)}`), get<CallEvents>(`/v1/calls/${encodeURIComponent(callId)}/events${qs({ ...p, tree: true })}`)]).then(
      ([t, e]) => {
        if (stop) return;
        setTree(t);
        setEvents(e);
      },
      (err: Error) => !stop && setError(err.message),
    );
    return () => {
      stop = true;
    };
  }, [callId, provider]);

  const legs = useMemo(() => (tree ? flattenTree(tree) : []), [tree]);
  const deliveries = useMemo(() => (events ? deliveriesOf(events.data) : []), [events]);

  const setParam = (name: string, value: string | null) => {
    const next = new URLSearchParams(search);
    if (value === null) next.delete(name);
    else next.set(name, value);
    navigate(`${location.pathname}?${next.toString()}`, true);
  };

  if (error) {
    return (
      <p role="alert" className="error">
        {error}
      </p>
    );
  }
  if (!tree || !events) return <p role="status">Loading…</p>;

  const selected = selectedEvent ? deliveries.find((d) => d.events.some((e) => e.position === selectedEvent)) ?? null : null;
  const recordings = legs.flatMap((l) => l.recordings);
  const base = callHref(callId, tree.provider);

  return (
    <section aria-labelledby="call-h">
      <h1 id="call-h">
        Call {tree.callId} <small>({tree.provider})</small>
      </h1>
      <p className="row">
        <span>
          {tree.from ?? '?'} → {tree.to ?? '?'} · started {fmtTime(tree.startedAt)} · {legs.length} {legs.length === 1 ? 'leg' : 'legs'} ·{' '}
          <span data-testid="chain-valid">{events.chain.valid ? 'hash chains verify' : 'a hash chain is BROKEN'}</span>
        </span>
        <a href={base} onClick={onLinkClick}>
          Link to this call
        </a>
        <button type="button" onClick={() => download(`call-${tree.callId}.ndjson`, 'application/x-ndjson', events.data.map((e) => JSON.stringify(e)).join('\n') + '\n')}>
          Export NDJSON
        </button>
        <button type="button" onClick={() => ladderRef.current && download(`ladder-${tree.callId}.svg`, 'image/svg+xml', new XMLSerializer().serializeToString(ladderRef.current))}>
          Export ladder SVG
        </button>
      </p>

      <h2>Leg tree</h2>
      <div className="tree" data-testid="leg-tree">
        <ul>
          <LegNode node={tree} events={events.data} selectedLeg={selectedLeg} base={base} />
        </ul>
      </div>

      <h2 id="ladder-h">Ladder</h2>
      <div className="row" role="radiogroup" aria-label="Clock">
        {(['receive', 'provider'] as const).map((c) => (
          <label key={c}>
            <input type="radio" name="clock" value={c} checked={clock === c} onChange={() => setParam('clock', c)} /> {c === 'receive' ? 'Receive clock' : "Provider's clock"}
          </label>
        ))}
      </div>
      <Ladder ref={ladderRef} legs={legs} deliveries={deliveries} clock={clock} selected={selected} highlightLeg={selectedLeg} onSelect={(d) => setParam('event', d.events[0]!.position)} />
      {selected && <BodyViewer delivery={selected} link={`${base}${base.includes('?') ? '&' : '?'}event=${selected.events[0]!.position}`} />}

      <h2>Recordings</h2>
      {recordings.length === 0 ? (
        <p>No recording.</p>
      ) : (
        <ul className="recordings">
          {recordings.map((r) => (
            <li key={r.recordingId}>
              <strong>{r.recordingId}</strong> on leg{' '}
              <a href={callHref(callId, tree.provider, { leg: r.callId })} onClick={onLinkClick}>
                {r.callId}
              </a>{' '}
              ({r.scope}, {fmtSec(r.durationSec)}) <audio controls preload="none" src={r.url} aria-label={`Recording ${r.recordingId}`} />
            </li>
          ))}
        </ul>
      )}
    </section>
  );
};

const LegNode = ({ node, events, selectedLeg, base }: { node: CallTreeDto; events: CallEventDto[]; selectedLeg: string | null; base: string }) => {
  const missing = missingOf(node);
  const extra = node as unknown as Record<string, unknown>;
  return (
    <li>
      <article className="leg" aria-current={selectedLeg === node.callId ? 'true' : undefined} data-leg={node.callId} aria-label={`Leg ${node.callId}`}>
        <div className="row">
          <a href={`${base}${base.includes('?') ? '&' : '?'}leg=${encodeURIComponent(node.callId)}`} onClick={onLinkClick}>
            {node.callId}
          </a>
          <span className={`status s-${node.status}`} data-field="status">
            {node.status}
          </span>
          <span data-field="final">{node.final ? 'final' : `partial: waiting for ${missing.join(' and ')}`}</span>
          {node.linkConflict && <span className="error">conflicting parent links</span>}
        </div>
        <dl>
          <dt>Direction</dt>
          <dd data-field="direction">{node.direction ?? '—'}</dd>
          <dt>From → To</dt>
          <dd>
            {node.from ?? '?'} → {node.to ?? '?'}
          </dd>
          <dt>SIP code</dt>
          <dd data-field="sipStatus">{node.sipStatus ?? '—'}</dd>
          <dt>End reason</dt>
          <dd data-field="endReason">{node.endReason ?? '—'}</dd>
          <dt>Hung up by</dt>
          <dd>{typeof extra.hangupBy === 'string' ? extra.hangupBy : 'not reported'}</dd>
          <dt>Ring</dt>
          <dd data-field="ring">
            {fmtSec(node.ringDurationSec)} <abbr title={node.durationSource.ring ?? undefined}>{sourceMark(node.durationSource.ring)}</abbr>
          </dd>
          <dt>Talk</dt>
          <dd data-field="talk">
            {fmtSec(node.talkDurationSec)} <abbr title={node.durationSource.talk ?? undefined}>{sourceMark(node.durationSource.talk)}</abbr>
          </dd>
          <dt>Post-dial delay</dt>
          <dd>{fmtSec(pddOf(node, events))}</dd>
          <dt>Answered by</dt>
          <dd data-field="answeredBy">{node.answeredBy ?? '—'}</dd>
          <dt>Started / ended</dt>
          <dd>
            {fmtTime(node.startedAt)} / {fmtTime(node.endedAt)}
          </dd>
        </dl>
      </article>
      {node.children.length > 0 && (
        <ul>
          {node.children.map((c) => (
            <LegNode key={c.callId} node={c} events={events} selectedLeg={selectedLeg} base={base} />
          ))}
        </ul>
      )}
    </li>
  );
};

const decodeBase64 = (b64: string): Uint8Array => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
const hexDump = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');

/** The delivery exactly as stored: parsed for reading, the raw bytes one click away, with its signature and chain verdicts. */
const BodyViewer = ({ delivery, link }: { delivery: Delivery; link: string }) => {
  const [raw, setRaw] = useState(false);
  const { receipt } = delivery.events[0]!;
  const type = (receipt.contentType ?? '').toLowerCase();
  let parsed: React.ReactNode = null;
  if (receipt.bodyEncoding === 'utf8' && type.includes('json')) {
    try {
      parsed = <pre data-testid="body-json">{JSON.stringify(JSON.parse(receipt.body), null, 2)}</pre>;
    } catch {
      parsed = null;
    }
  } else if (receipt.bodyEncoding === 'utf8' && type.includes('x-www-form-urlencoded')) {
    parsed = (
      <table data-testid="body-form">
        <thead>
          <tr>
            <th scope="col">Field</th>
            <th scope="col">Value</th>
          </tr>
        </thead>
        <tbody>
          {[...new URLSearchParams(receipt.body)].map(([k, v], i) => (
            <tr key={i}>
              <td>{k}</td>
              <td>{v}</td>
            </tr>
          ))}
        </tbody>
      </table>
    );
  }
  const showRaw = raw || parsed === null;
  const sig = receipt.signature;
  const verified = delivery.events.every((e) => e.chainVerified);
  return (
    <section className="viewer" aria-label="Delivery" data-testid="body-viewer">
      <h3>
        Delivery {receipt.id}: {delivery.events.map((e) => e.type).join(', ')}
      </h3>
      <p className="row">
        <span>
          Signature:{' '}
          <span data-testid="signature" className={sig.status === 'verified' ? 'verdict-ok' : sig.status === 'unverified' ? 'verdict-bad' : 'verdict-none'}>
            {sig.status}
          </span>
          {sig.header && <span title="signature header, shortened"> ({sig.header.slice(0, 16)}…)</span>}
        </span>
        <span>
          Hash chain:{' '}
          <span data-testid="chain" className={verified ? 'verdict-ok' : 'verdict-bad'}>
            {verified ? 'link verifies' : 'BROKEN at or before this event'}
          </span>
        </span>
        <a href={link} onClick={onLinkClick}>
          Link to this delivery
        </a>
      </p>
      <p>
        Received {fmtTime(delivery.events[0]!.receivedAt)} · provider time {fmtTime(delivery.events[0]!.occurredAt ?? sig.timestamp)} · path /{receipt.path.replace(/^\//, '')} ·{' '}
        {receipt.contentType ?? 'no content type'} · positions {delivery.events.map((e) => e.position).join(', ')}
      </p>
      {parsed !== null && (
        <button type="button" onClick={() => setRaw(!raw)} aria-pressed={raw}>
          {raw ? 'Show parsed' : 'Show raw bytes'}
        </button>
      )}
      {showRaw ? <pre data-testid="body-raw">{receipt.bodyEncoding === 'utf8' ? receipt.body : hexDump(decodeBase64(receipt.body))}</pre> : parsed}
      <details>
        <summary>Headers kept ({Object.keys(receipt.headers).length})</summary>
        <table>
          <tbody>
            {Object.entries(receipt.headers).map(([k, v]) => (
              <tr key={k}>
                <th scope="row">{k}</th>
                <td>{/signature/.test(k) ? `${v.slice(0, 16)}…` : v}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </details>
    </section>
  );
};
