import { useEffect, useRef, useState, type FormEvent } from 'react';
import { get, getText, post, qs, type AuditReport, type ProjectionStatus, type RejectionEntry } from '../api.js';
import { fmtNum, fmtTime } from '../format.js';
import { callHref, onLinkClick } from '../router.js';

const POLL_MS = 2000;

/** Sums every sample of a Prometheus counter or gauge (all label sets). */
export const metricSum = (text: string, name: string): number | null => {
  let sum: number | null = null;
  for (const line of text.split('\n')) {
    if (line.startsWith(name) && (line[name.length] === ' ' || line[name.length] === '{')) sum = (sum ?? 0) + Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
};

const usePoll = <T,>(load: () => Promise<T>, ms = POLL_MS): [T | null, string | null, () => void] => {
  const [value, setValue] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let stop = false;
    const run = () => load().then((v) => !stop && (setValue(v), setError(null)), (e: Error) => !stop && setError(e.message));
    void run();
    const timer = window.setInterval(() => document.visibilityState === 'visible' && void run(), ms);
    return () => {
      stop = true;
      window.clearInterval(timer);
    };
  }, [tick]);
  return [value, error, () => setTick((t) => t + 1)];
};

export const OperationsPage = () => (
  <section aria-labelledby="ops-h">
    <h1 id="ops-h">Operations</h1>
    <Projections />
    <Ingest />
    <ChainVerification />
    <Rejections />
  </section>
);

const Projections = () => {
  const [status, error, refresh] = usePoll(() => get<{ data: ProjectionStatus[] }>('/v1/admin/projections').then((r) => r.data));
  const dialog = useRef<HTMLDialogElement>(null);
  const [message, setMessage] = useState<string | null>(null);
  const confirm = async () => {
    dialog.current?.close();
    try {
      const r = await post<{ rebuilding: string[] }>('/v1/admin/projections/rebuild', {});
      setMessage(`Rebuild started: ${r.rebuilding.join(', ')}. Queries keep reading the current generation until the new one has caught up.`);
      refresh();
    } catch (err) {
      setMessage(`Rebuild refused: ${(err as Error).message}`);
    }
  };
  return (
    <>
      <h2>Projections</h2>
      {error && <p role="alert" className="error">{error}</p>}
      <div className="scroll">
        <table data-testid="projections">
          <thead>
            <tr>
              <th scope="col">Projection</th>
              <th scope="col">Version</th>
              <th scope="col">Generation</th>
              <th scope="col">State</th>
              <th scope="col">Lag</th>
              <th scope="col">Checkpoint / head</th>
              <th scope="col">Rebuild</th>
            </tr>
          </thead>
          <tbody>
            {(status ?? []).map((p) => (
              <tr key={p.name} data-projection={p.name}>
                <th scope="row">{p.name}</th>
                <td>{p.version}</td>
                <td data-field="generation">{p.generation}</td>
                <td data-field="state">
                  {p.state}
                  {p.lastError && <div className="error">{p.lastError} (at {p.failingPosition})</div>}
                </td>
                <td>
                  {fmtNum(p.lagEvents)} events, {p.lagSeconds.toFixed(1)} s
                </td>
                <td>
                  {p.checkpoint.position} / {p.head}
                </td>
                <td>{p.rebuild ? `generation ${p.rebuild.generation} at ${p.rebuild.position} of ${p.head}` : '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <p className="row">
        <button type="button" className="danger" onClick={() => dialog.current?.showModal()}>
          Rebuild projections…
        </button>
        {message && <span role="status">{message}</span>}
      </p>
      <dialog ref={dialog} aria-labelledby="rebuild-h">
        <h3 id="rebuild-h">Rebuild every projection?</h3>
        <p>The read models are rebuilt side by side from the event store and switched over when they have caught up. It loads the database for a while.</p>
        <div className="row">
          <button type="button" className="danger" onClick={() => void confirm()}>
            Rebuild now
          </button>
          <button type="button" onClick={() => dialog.current?.close()} autoFocus>
            Cancel
          </button>
        </div>
      </dialog>
    </>
  );
};

const Ingest = () => {
  const last = useRef<{ at: number; total: number } | null>(null);
  const [m] = usePoll(async () => {
    const text = await getText('/metrics');
    const total = metricSum(text, 'ledger_webhooks_total') ?? 0;
    const at = Date.now();
    const prev = last.current;
    last.current = { at, total };
    return {
      total,
      rate: prev && at > prev.at ? ((total - prev.total) * 1000) / (at - prev.at) : null,
      queue: metricSum(text, 'ledger_ingest_queue_depth'),
      rejected: metricSum(text, 'ledger_webhook_rejections_total') ?? 0,
    };
  });
  return (
    <>
      <h2>Ingest (this process)</h2>
      <p data-testid="ingest">
        {m ? (
          <>
            {m.rate === null ? 'rate: measuring…' : `${m.rate.toFixed(1)} deliveries/s`} · queue depth {m.queue ?? '—'} · {fmtNum(m.total)} deliveries and {fmtNum(m.rejected)} refusals since start
          </>
        ) : (
          'Loading…'
        )}
      </p>
    </>
  );
};

const ChainVerification = () => {
  const [report, setReport] = useState<AuditReport | null>(null);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const verify = async (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const toIso = (v: FormDataEntryValue | null) => (v ? `${String(v)}:00Z` : undefined);
    setBusy(true);
    setError(null);
    try {
      setReport(await get<AuditReport>(`/v1/audit/verify${qs({ since: toIso(f.get('since')), until: toIso(f.get('until')) })}`));
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <>
      <h2>Hash-chain verification</h2>
      <form className="filters" onSubmit={(e) => void verify(e)} aria-label="Verify hash chains">
        <label>
          <span>Streams with events since (UTC, optional)</span>
          <input type="datetime-local" name="since" />
        </label>
        <label>
          <span>until (UTC, optional)</span>
          <input type="datetime-local" name="until" />
        </label>
        <div className="actions">
          <button type="submit" disabled={busy}>
            Verify chains
          </button>
        </div>
      </form>
      {error && <p role="alert" className="error">{error}</p>}
      {report && (
        <div data-testid="verify-report">
          <p>
            <span className={report.valid ? 'verdict-ok' : 'verdict-bad'} data-field="valid">
              {report.valid ? 'Every chain verifies' : `${report.broken.length} broken chain(s)`}
            </span>{' '}
            · <span data-field="streams">{report.streamsChecked}</span> streams, <span data-field="events">{report.eventsChecked}</span> events checked
          </p>
          {report.broken.length > 0 && (
            <ul>
              {report.broken.map((b) => (
                <li key={b.streamName}>
                  {b.callId ? (
                    <a href={callHref(b.callId, b.provider ?? undefined, { event: b.position })} onClick={onLinkClick}>
                      {b.provider} {b.callId}
                    </a>
                  ) : (
                    b.streamName
                  )}{' '}
                  at position {b.position}: {b.reason}
                </li>
              ))}
            </ul>
          )}
        </div>
      )}
    </>
  );
};

const Rejections = () => {
  const [r, error] = usePoll(() => get<{ total: number; recent: RejectionEntry[] }>('/v1/admin/webhook-rejections'), 5000);
  return (
    <>
      <h2>Refused webhooks</h2>
      {error && <p role="alert" className="error">{error}</p>}
      <p>
        <span data-testid="rejections-total">{r ? fmtNum(r.total) : '…'}</span> refused since start (metadata only; the last 200 below).
      </p>
      <div className="scroll">
        <table data-testid="rejections">
          <thead>
            <tr>
              <th scope="col">At</th>
              <th scope="col">Provider</th>
              <th scope="col">Path</th>
              <th scope="col">From</th>
              <th scope="col">Reason</th>
              <th scope="col">Type</th>
              <th scope="col">Bytes</th>
            </tr>
          </thead>
          <tbody>
            {(r?.recent ?? []).map((x, i) => (
              <tr key={i}>
                <td>{fmtTime(x.at)}</td>
                <td>{x.provider}</td>
                <td>{x.path}</td>
                <td>{x.remoteAddr ?? '—'}</td>
                <td>{x.reason}</td>
                <td>{x.contentType ?? '—'}</td>
                <td>{x.bodyBytes}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
};
