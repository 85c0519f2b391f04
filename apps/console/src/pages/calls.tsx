import { useEffect, useState, type FormEvent } from 'react';
import { get, qs, type CallPage } from '../api.js';
import { fmtSec, fmtTime, sourceMark } from '../format.js';
import { BASE, callHref, navigate, onLinkClick } from '../router.js';

/** The list filters, named as the API names them, so the console URL and the API query are the same words. */
export const FILTERS = ['since', 'until', 'provider', 'accountId', 'direction', 'status', 'attempt', 'answeredBy', 'final', 'rootOnly', 'numberContains', 'from', 'to'] as const;
const PROVIDERS = ['freeclimb', 'jambonz', 'twilio', 'restcomm'];
const STATUSES = ['initiated', 'ringing', 'in-progress', 'completed', 'busy', 'no-answer', 'failed', 'canceled'];
const DIRECTIONS = ['inbound', 'outbound-api', 'outbound-dial'];
const LIVE_MS = 5000;

export const filtersOf = (search: URLSearchParams): Record<string, string> => {
  const f: Record<string, string> = {};
  for (const k of FILTERS) {
    const v = search.get(k);
    if (v) f[k] = v;
  }
  return f;
};

export const callsHref = (filters: Record<string, string | undefined>) => `${BASE}/calls${qs(filters)}`;

export const CallsPage = ({ search }: { search: URLSearchParams }) => {
  const filters = filtersOf(search);
  const cursor = search.get('cursor') ?? undefined;
  const key = JSON.stringify([filters, cursor]);
  const [page, setPage] = useState<CallPage | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [fresh, setFresh] = useState<Set<string>>(new Set());
  const [total, setTotal] = useState<number | null>(null);

  useEffect(() => {
    let stop = false;
    let seen: Set<string> | null = null;
    const load = async () => {
      try {
        const p = await get<CallPage>(`/v1/calls${qs({ ...filters, cursor, limit: 50 })}`);
        if (stop) return;
        // The exact total (a count over every matching leg, the costly part on a wide filter) is asked for once the
        // rows are in, so that it does not compete with them for the database. Its failure is the list's failure
        // too (shown, or the session's end), so it is not reported twice.
        const total = get<CallPage>(`/v1/calls${qs({ ...filters, limit: 1, withTotal: true })}`).then(
          (t) => !stop && setTotal(t.total ?? null),
          () => undefined,
        );
        const ids = p.data.map((l) => `${l.provider}:${l.callId}`);
        if (seen) setFresh(new Set(ids.filter((id) => !seen!.has(id))));
        seen = new Set(ids);
        setPage(p);
        setError(null);
        await total;
      } catch (err) {
        if (!stop) setError((err as Error).message);
      }
    };
    setPage(null);
    setTotal(null);
    void load();
    // The first page follows new calls without a reload; a later page stays put so that rows do not shift under the reader.
    const timer = cursor ? undefined : window.setInterval(() => document.visibilityState === 'visible' && void load(), LIVE_MS);
    return () => {
      stop = true;
      window.clearInterval(timer);
    };
  }, [key]);

  const apply = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const data = new FormData(e.currentTarget);
    const next: Record<string, string> = {};
    for (const k of FILTERS) {
      const v = String(data.get(k) ?? '').trim();
      if (v) next[k] = k === 'since' || k === 'until' ? toIso(v) : v;
    }
    const callId = String(data.get('callId') ?? '').trim();
    if (callId) navigate(callHref(callId));
    else navigate(callsHref(next));
  };

  return (
    <section aria-labelledby="calls-h">
      <h1 id="calls-h">Calls</h1>
      <form className="filters" onSubmit={apply} key={key} aria-label="Filters">
        <Field label="Since (UTC)" name="since" type="datetime-local" value={fromIso(filters.since)} />
        <Field label="Until (UTC)" name="until" type="datetime-local" value={fromIso(filters.until)} />
        <Select label="Provider" name="provider" value={filters.provider} options={PROVIDERS} />
        <Field label="Account" name="accountId" value={filters.accountId} />
        <Select label="Direction" name="direction" value={filters.direction} options={DIRECTIONS} />
        <Select label="Status" name="status" value={filters.status} options={STATUSES} />
        <Select label="Ended" name="attempt" value={filters.attempt} options={['true', 'false']} labels={{ true: 'ended (attempts)', false: 'not yet ended' }} />
        <Select
          label="Answered by"
          name="answeredBy"
          value={filters.answeredBy}
          options={['human', 'machine', 'fax', 'machine,fax']}
          labels={{ 'machine,fax': 'machine or fax' }}
        />
        <Select label="Final" name="final" value={filters.final} options={['true', 'false']} labels={{ true: 'final', false: 'partial' }} />
        <Select label="Legs" name="rootOnly" value={filters.rootOnly} options={['true']} labels={{ true: 'roots only' }} />
        <Field label="Number contains (from or to)" name="numberContains" value={filters.numberContains} />
        <Field label="From (exact or prefix*)" name="from" value={filters.from} />
        <Field label="To (exact or prefix*)" name="to" value={filters.to} />
        <Field label="Call id" name="callId" value="" />
        <div className="actions">
          <button type="submit">Apply</button>
          <a href={`${BASE}/calls`} onClick={onLinkClick}>
            Clear
          </a>
        </div>
      </form>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {page && (
        <>
          <p className="total" aria-live="polite">
            {total === null ? 'Counting' : <span data-testid="calls-total">{total.toLocaleString('en-US')}</span>} legs match
            {!cursor && <span className="live"> · live</span>}
          </p>
          <div className="scroll">
            <table className="calls">
              <thead>
                <tr>
                  <th scope="col">Start</th>
                  <th scope="col">From → To</th>
                  <th scope="col">Provider</th>
                  <th scope="col">Status</th>
                  <th scope="col">Ring</th>
                  <th scope="col">Talk</th>
                  <th scope="col">Legs in tree</th>
                  <th scope="col">Rec.</th>
                </tr>
              </thead>
              <tbody>
                {page.data.map((l) => (
                  <tr key={`${l.provider}:${l.callId}`} className={fresh.has(`${l.provider}:${l.callId}`) ? 'fresh' : undefined} data-call-id={l.callId}>
                    <td>
                      <a href={callHref(l.callId, l.provider)} onClick={onLinkClick}>
                        {fmtTime(l.startedAt)}
                      </a>
                    </td>
                    <td>
                      {l.from ?? '?'} → {l.to ?? '?'}
                    </td>
                    <td>{l.provider}</td>
                    <td>
                      <span className={`status s-${l.status}`}>{l.status}</span>
                      {!l.final && <span className="partial" title="still expecting events"> partial</span>}
                    </td>
                    <td>
                      {fmtSec(l.ringDurationSec)} <sup>{sourceMark(l.durationSource.ring)}</sup>
                    </td>
                    <td>
                      {fmtSec(l.talkDurationSec)} <sup>{sourceMark(l.durationSource.talk)}</sup>
                    </td>
                    <td>
                      {l.treeLegs}
                      {l.parentCallId ? ` (child, depth ${l.depth})` : ''}
                    </td>
                    <td>{l.recordings.length ? `${l.recordings.length} ▶` : ''}</td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
          <nav className="pager" aria-label="Pages">
            {cursor && (
              <a href={callsHref(filters)} onClick={onLinkClick}>
                First page
              </a>
            )}
            {page.nextCursor && (
              <a href={callsHref({ ...filters, cursor: page.nextCursor })} onClick={onLinkClick}>
                Next page
              </a>
            )}
          </nav>
        </>
      )}
      {!page && !error && <p role="status">Loading…</p>}
    </section>
  );
};

/** datetime-local has no zone: the console reads and writes it as UTC, like every time it shows. */
const fromIso = (iso?: string) => (iso ? iso.slice(0, 16) : '');
const toIso = (local: string) => (local.length === 16 ? `${local}:00Z` : local.endsWith('Z') ? local : `${local}Z`);

const Field = ({ label, name, value, type = 'text' }: { label: string; name: string; value?: string; type?: string }) => (
  <label>
    <span>{label}</span>
    <input name={name} type={type} defaultValue={value ?? ''} />
  </label>
);

const Select = ({ label, name, value, options, labels = {} }: { label: string; name: string; value?: string; options: string[]; labels?: Record<string, string> }) => (
  <label>
    <span>{label}</span>
    <select name={name} defaultValue={value ?? ''}>
      <option value="">any</option>
      {options.map((o) => (
        <option key={o} value={o}>
          {labels[o] ?? o}
        </option>
      ))}
    </select>
  </label>
);
