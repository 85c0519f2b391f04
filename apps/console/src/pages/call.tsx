import { useEffect, useMemo, useRef, useState } from 'react';
import { get, qs, type CallEventDto, type CallEvents, type CallLegDto, type CallTreeDto } from '../api.js';
import { fmtSec, fmtTime, sourceMark } from '../format.js';
import { callHref, navigate, onLinkClick } from '../router.js';
import { Ladder, deliveriesOf, envelopeOf, type Clock, type Delivery } from './ladder.js';

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

const eventLink = (base: string, d: Delivery) => `${base}${base.includes('?') ? '&' : '?'}event=${d.events[0]!.position}`;

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
          <LegNode node={tree} events={events.data} selectedLeg={selectedLeg} base={base} callId={callId} />
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
      {selected &&
        (selected.answer ? (
          <AnswerViewer answer={selected} deliveries={deliveries} link={eventLink(base, selected)} onSelect={(d) => setParam('event', d.events[0]!.position)} />
        ) : (
          <BodyViewer delivery={selected} deliveries={deliveries} link={eventLink(base, selected)} onSelect={(d) => setParam('event', d.events[0]!.position)} />
        ))}

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

const LegNode = ({ node, events, selectedLeg, base, callId }: { node: CallTreeDto; events: CallEventDto[]; selectedLeg: string | null; base: string; callId: string }) => {
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
          {node.intent && node.intent.discrepancies.length > 0 && (
            <span className="flag" data-field="discrepancy-count">
              ⚠ {node.intent.discrepancies.length} {node.intent.discrepancies.length === 1 ? 'discrepancy' : 'discrepancies'}
            </span>
          )}
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
        {node.intent && <Intent intent={node.intent} base={base} callId={callId} provider={node.provider} />}
      </article>
      {node.children.length > 0 && (
        <ul>
          {node.children.map((c) => (
            <LegNode key={c.callId} node={c} events={events} selectedLeg={selectedLeg} base={base} callId={callId} />
          ))}
        </ul>
      )}
    </li>
  );
};

type LegIntent = NonNullable<CallTreeDto['intent']>;

/** Tee mode: what the leg's app asked for (its instructions and dial requests) beside what happened. */
const Intent = ({ intent, base, callId, provider }: { intent: LegIntent; base: string; callId: string; provider: string }) => {
  return (
    <div className="intent" data-testid="intent">
      <h4>The app asked</h4>
      <ol className="answers" aria-label="Instructions received">
        {intent.answers.map((a) => (
          <li key={a.position} data-answer={a.position}>
            <a href={`${base}${base.includes('?') ? '&' : '?'}event=${a.position}`} onClick={onLinkClick}>
              {a.path}
            </a>{' '}
            → {a.outcome === 'answered' ? `HTTP ${a.status ?? '?'}` : a.outcome}
            {a.parse === 'unparseable' && <span className="error"> (unparseable, kept)</span>}: <span data-field="instructions">{a.instructions.length ? a.instructions.join(' → ') : 'no instructions'}</span>
          </li>
        ))}
      </ol>
      {intent.dials.map((d) => (
        <div key={d.position} className="dial" data-dial={d.position}>
          <strong>{d.verb}</strong> {d.mode}, ring timeout {d.ringTimeoutSec ?? `${d.defaultRingTimeoutSec} (default)`} s
          {d.timeLimitSec !== null && `, time limit ${d.timeLimitSec} s`}
          {d.callerId && `, caller id ${d.callerId}`}
          {d.record !== null && `, record ${d.record ? 'on' : 'off'}`}
          {d.amd !== null && d.amd !== undefined && ', machine detection'}
          <ul aria-label={`Targets of ${d.verb}`}>
            {d.targets.map((t, i) => (
              <li key={i} data-target={t.value}>
                {t.type} {t.value} →{' '}
                {t.childLegIds.length === 0
                  ? <span className="error">no leg</span>
                  : t.childLegIds.map((c) => (
                      <a key={c} href={callHref(callId, provider, { leg: c })} onClick={onLinkClick} data-child={c}>
                        {c}
                      </a>
                    ))}
              </li>
            ))}
          </ul>
        </div>
      ))}
      {intent.discrepancies.length > 0 && (
        <ul className="discrepancies" aria-label="Discrepancies" data-testid="discrepancies">
          {intent.discrepancies.map((x, i) => (
            <li key={i} data-kind={x.kind}>
              <strong>{x.kind}</strong>: {x.message}
            </li>
          ))}
        </ul>
      )}
    </div>
  );
};

/** The app's answer as the ledger kept it: its status and latency, the body verbatim (after redaction), what was redacted. */
const AnswerViewer = ({ answer, deliveries, link, onSelect }: { answer: Delivery; deliveries: Delivery[]; link: string; onSelect: (d: Delivery) => void }) => {
  const [raw, setRaw] = useState(false);
  const env = envelopeOf(answer);
  const first = answer.events[0]!;
  const to = answer.answer?.to ? deliveries.find((d) => d.key === answer.answer!.to) : undefined;
  const verified = answer.events.every((e) => e.chainVerified);
  const contentType = env?.headers['content-type'] ?? null;
  let parsed: React.ReactNode = null;
  if (env && env.bodyEncoding === 'utf8' && (contentType ?? '').includes('json')) {
    try {
      parsed = <pre data-testid="answer-json">{JSON.stringify(JSON.parse(env.body), null, 2)}</pre>;
    } catch {
      parsed = null;
    }
  }
  const showRaw = raw || parsed === null;
  return (
    <section className="viewer answer" aria-label="App answer" data-testid="answer-viewer">
      <h3>
        App answer {first.receipt.id}: {answer.events.map((e) => e.type).join(', ')}
      </h3>
      <p className="row">
        <span>
          To:{' '}
          {to ? (
            <button type="button" className="link" onClick={() => onSelect(to)}>
              delivery {to.events[0]!.receipt.id} ({to.events.map((e) => e.type).join(', ')})
            </button>
          ) : (
            'a delivery not stored'
          )}
        </span>
        <span>
          Hash chain:{' '}
          <span data-testid="chain" className={verified ? 'verdict-ok' : 'verdict-bad'}>
            {verified ? 'link verifies' : 'BROKEN at or before this event'}
          </span>
        </span>
        <a href={link} onClick={onLinkClick}>
          Link to this answer
        </a>
      </p>
      {env ? (
        <>
          <p data-testid="answer-status">
            {env.outcome === 'answered' ? `HTTP ${env.status}` : `no answer: ${env.outcome}${env.error ? ` (${env.error})` : ''}`} in {env.durationMs} ms · {contentType ?? 'no content type'} ·{' '}
            {env.answers.method} /{env.answers.path.replace(/^\//, '')} · recorded {fmtTime(first.receivedAt)}
          </p>
          <p data-testid="redaction" className={env.redactions.length ? 'notice' : 'hint'}>
            {env.redactions.length
              ? `${env.redactions.length} credential${env.redactions.length === 1 ? '' : 's'} redacted before storage: ${env.redactions.map((r) => r.path).join(', ')}. The body below is the answer with ${env.redactions.length === 1 ? 'that value' : 'those values'} replaced; every other byte is as the app sent it.`
              : 'Nothing redacted: the body below is the answer byte for byte.'}
          </p>
          {parsed !== null && (
            <button type="button" onClick={() => setRaw(!raw)} aria-pressed={raw}>
              {raw ? 'Show parsed' : 'Show raw bytes'}
            </button>
          )}
          {showRaw ? <pre data-testid="answer-raw">{env.bodyEncoding === 'utf8' ? env.body : hexDump(decodeBase64(env.body))}</pre> : parsed}
          <details>
            <summary>Answer headers kept ({Object.keys(env.headers).length}) and the stored envelope</summary>
            <table>
              <tbody>
                {Object.entries(env.headers).map(([k, v]) => (
                  <tr key={k}>
                    <th scope="row">{k}</th>
                    <td>{v}</td>
                  </tr>
                ))}
              </tbody>
            </table>
            <pre data-testid="answer-envelope">{first.receipt.body}</pre>
          </details>
        </>
      ) : (
        <pre data-testid="answer-envelope">{first.receipt.body}</pre>
      )}
    </section>
  );
};

const decodeBase64 = (b64: string): Uint8Array => Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
const hexDump = (bytes: Uint8Array) => Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join(' ');

/** The delivery exactly as stored: parsed for reading, the raw bytes one click away, with its signature and chain verdicts. */
const BodyViewer = ({ delivery, deliveries, link, onSelect }: { delivery: Delivery; deliveries: Delivery[]; link: string; onSelect: (d: Delivery) => void }) => {
  const answer = delivery.answeredBy ? deliveries.find((d) => d.key === delivery.answeredBy) : undefined;
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
        {answer && (
          <button type="button" onClick={() => onSelect(answer)} data-testid="show-answer">
            Show the app&apos;s answer
          </button>
        )}
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
