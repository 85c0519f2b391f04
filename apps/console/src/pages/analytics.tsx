import { useEffect, useRef, useState, type FormEvent } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { get, qs, type Kpis, type Summary, type Timeseries } from '../api.js';
import { fmtNum, fmtPct, fmtSec } from '../format.js';
import { BASE, navigate, onLinkClick } from '../router.js';
import { callsHref } from './calls.js';

const SCOPE = ['provider', 'accountId', 'direction', 'rootOnly'] as const;
const GROUPS = ['provider', 'accountId', 'direction', 'status', 'day', 'hour'] as const;
const OUTCOMES = ['completed', 'busy', 'no-answer', 'failed', 'canceled'] as const;
const DAY = 86_400_000;

/** The period in the URL, or the last 7 days (whole UTC hours) when none is given. */
export const periodOf = (search: URLSearchParams): { since: string; until: string } => {
  const until = search.get('until') ?? new Date(Math.ceil(Date.now() / 3_600_000) * 3_600_000).toISOString();
  const since = search.get('since') ?? new Date(Date.parse(until) - 7 * DAY).toISOString();
  return { since, until };
};

const iso = (ms: number) => new Date(ms).toISOString();

export const AnalyticsPage = ({ search }: { search: URLSearchParams }) => {
  const { since, until } = periodOf(search);
  const span = Date.parse(until) - Date.parse(since);
  const prev = { since: iso(Date.parse(since) - span), until: since };
  const scope: Record<string, string> = {};
  for (const k of SCOPE) {
    const v = search.get(k);
    if (v) scope[k] = v;
  }
  const groupBy = (search.get('groupBy') as (typeof GROUPS)[number] | null) ?? 'provider';
  const interval = search.get('interval') === 'hour' || (!search.get('interval') && span <= 2 * DAY) ? 'hour' : 'day';
  const key = JSON.stringify([since, until, scope, groupBy, interval]);

  const [data, setData] = useState<{ now: Summary; before: Summary; series: Timeseries } | null>(null);
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    let stop = false;
    setData(null);
    Promise.all([
      get<Summary>(`/v1/analytics/summary${qs({ ...scope, since, until, groupBy })}`),
      get<Summary>(`/v1/analytics/summary${qs({ ...scope, ...prev })}`),
      get<Timeseries>(`/v1/analytics/timeseries${qs({ ...scope, since, until, interval })}`),
    ]).then(
      ([now, before, series]) => !stop && (setData({ now, before, series }), setError(null)),
      (err: Error) => !stop && setError(err.message),
    );
    return () => {
      stop = true;
    };
  }, [key]);

  const here = (over: Record<string, string | undefined>) => `${BASE}/analytics${qs({ since, until, ...scope, groupBy, interval, ...over })}`;
  /** The calls list holding exactly the legs behind a figure: the same window and scope, plus the figure's own filter. */
  const drill = (extra: Record<string, string> = {}, window = { since, until }) => callsHref({ ...scope, ...window, ...extra });

  const apply = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const days = Number(f.get('days'));
    const next: Record<string, string> = { groupBy: String(f.get('groupBy')), interval: String(f.get('interval')) };
    const end = Math.ceil(Date.now() / 3_600_000) * 3_600_000;
    if (days) Object.assign(next, { since: iso(end - days * DAY), until: iso(end) });
    else Object.assign(next, { since, until });
    for (const k of SCOPE) {
      const v = String(f.get(k) ?? '');
      if (v) next[k] = v;
    }
    navigate(`${BASE}/analytics${qs(next)}`);
  };

  return (
    <section aria-labelledby="an-h">
      <h1 id="an-h">Analytics</h1>
      <form className="filters" onSubmit={apply} key={key} aria-label="Period and scope">
        <label>
          <span>Period</span>
          <select name="days" defaultValue="">
            <option value="">as in the link ({since.slice(0, 16)} → {until.slice(0, 16)})</option>
            <option value="1">last 24 hours</option>
            <option value="7">last 7 days</option>
            <option value="30">last 30 days</option>
          </select>
        </label>
        <label>
          <span>Provider</span>
          <select name="provider" defaultValue={scope.provider ?? ''}>
            <option value="">any</option>
            {['freeclimb', 'jambonz', 'twilio', 'restcomm'].map((p) => (
              <option key={p}>{p}</option>
            ))}
          </select>
        </label>
        <label>
          <span>Account</span>
          <input name="accountId" defaultValue={scope.accountId ?? ''} />
        </label>
        <label>
          <span>Direction</span>
          <select name="direction" defaultValue={scope.direction ?? ''}>
            <option value="">any</option>
            {['inbound', 'outbound-api', 'outbound-dial'].map((p) => (
              <option key={p}>{p}</option>
            ))}
          </select>
        </label>
        <label>
          <span>Legs</span>
          <select name="rootOnly" defaultValue={scope.rootOnly ?? ''}>
            <option value="">all legs</option>
            <option value="true">roots only</option>
          </select>
        </label>
        <label>
          <span>Breakdown by</span>
          <select name="groupBy" defaultValue={groupBy}>
            {GROUPS.map((g) => (
              <option key={g}>{g}</option>
            ))}
          </select>
        </label>
        <label>
          <span>Series interval</span>
          <select name="interval" defaultValue={interval}>
            <option>hour</option>
            <option>day</option>
          </select>
        </label>
        <div className="actions">
          <button type="submit">Apply</button>
        </div>
      </form>
      {error && (
        <p role="alert" className="error">
          {error}
        </p>
      )}
      {!data && !error && <p role="status">Loading…</p>}
      {data && (
        <>
          <p>
            {since.slice(0, 16).replace('T', ' ')} → {until.slice(0, 16).replace('T', ' ')} UTC, beside the period before it ({prev.since.slice(0, 16).replace('T', ' ')} →).{' '}
            <a href={here({ since: prev.since, until: prev.until })} onClick={onLinkClick}>
              Go to previous period
            </a>
          </p>
          <div className="tiles" data-testid="tiles">
            <Tile name="Legs" now={data.now.totals.legs} before={data.before.totals.legs} fmt={fmtNum} href={drill()} />
            <Tile name="Attempts" now={data.now.totals.attempts} before={data.before.totals.attempts} fmt={fmtNum} note="the outcomes below add up to it" />
            <Tile name="Answered" now={data.now.totals.answered} before={data.before.totals.answered} fmt={fmtNum} href={drill({ status: 'completed' })} />
            <Tile name="ASR" now={data.now.totals.asr} before={data.before.totals.asr} fmt={fmtPct} />
            <Tile name="NER" now={data.now.totals.ner} before={data.before.totals.ner} fmt={fmtPct} />
            <Tile name="ACD" now={data.now.totals.acdSec} before={data.before.totals.acdSec} fmt={fmtSec} />
            <Tile name="Avg ring (PDD proxy)" now={data.now.totals.avgRingSec} before={data.before.totals.avgRingSec} fmt={fmtSec} />
            <Tile name="Machine answered" now={data.now.totals.machineAnswered} before={data.before.totals.machineAnswered} fmt={fmtNum} />
          </div>
          <h2>Outcomes</h2>
          <div className="tiles" data-testid="outcomes">
            {OUTCOMES.map((o) => (
              <Tile key={o} name={o} now={data.now.totals.outcomes[o]} before={data.before.totals.outcomes[o]} fmt={fmtNum} href={drill({ status: o })} />
            ))}
          </div>
          <h2>Over time ({interval})</h2>
          <Chart series={data.series} />
          <h2>By {groupBy}</h2>
          <Breakdown summary={data.now} groupBy={groupBy} drill={drill} interval={interval} />
        </>
      )}
    </section>
  );
};

const Tile = ({ name, now, before, fmt, href, note }: { name: string; now: number | null; before: number | null; fmt: (n: number | null) => string; href?: string; note?: string }) => (
  <div className="tile" data-tile={name}>
    <div>{name}</div>
    <div className="v">
      {href ? (
        <a href={href} onClick={onLinkClick} aria-label={`${name}: ${fmt(now)}, show these calls`} data-count={now ?? ''}>
          {fmt(now)}
        </a>
      ) : (
        fmt(now)
      )}
    </div>
    <div className="p">
      previous: {fmt(before)}
      {note && <> · {note}</>}
    </div>
  </div>
);

const FILTER_OF: Record<string, string | undefined> = { provider: 'provider', accountId: 'accountId', direction: 'direction', status: 'status' };

const Breakdown = ({ summary, groupBy, drill }: { summary: Summary; groupBy: string; drill: (extra?: Record<string, string>, window?: { since: string; until: string }) => string; interval: string }) => (
  <div className="scroll">
    <table data-testid="breakdown">
      <thead>
        <tr>
          <th scope="col">{groupBy}</th>
          <th scope="col">Legs</th>
          <th scope="col">Attempts</th>
          <th scope="col">Answered</th>
          <th scope="col">ASR</th>
          <th scope="col">NER</th>
          <th scope="col">ACD</th>
        </tr>
      </thead>
      <tbody>
        {summary.groups.map((g) => {
          const filter = FILTER_OF[groupBy];
          let href: string | null = null;
          if (g.key !== null && filter) href = drill({ [filter]: g.key });
          else if (g.key !== null && (groupBy === 'day' || groupBy === 'hour')) {
            const start = Date.parse(g.key);
            href = drill({}, { since: g.key, until: new Date(start + (groupBy === 'day' ? DAY : 3_600_000)).toISOString() });
          }
          return (
            <tr key={g.key ?? '∅'} data-group={g.key ?? ''}>
              <th scope="row">{g.key ?? '(none)'}</th>
              <td>
                {href ? (
                  <a href={href} onClick={onLinkClick} data-count={g.legs}>
                    {fmtNum(g.legs)}
                  </a>
                ) : (
                  fmtNum(g.legs)
                )}
              </td>
              <td>{fmtNum(g.attempts)}</td>
              <td>{fmtNum(g.answered)}</td>
              <td>{fmtPct(g.asr)}</td>
              <td>{fmtPct(g.ner)}</td>
              <td>{fmtSec(g.acdSec)}</td>
            </tr>
          );
        })}
      </tbody>
    </table>
  </div>
);

const Chart = ({ series }: { series: Timeseries }) => {
  const el = useRef<HTMLDivElement>(null);
  useEffect(() => {
    if (!el.current) return;
    const b = series.buckets;
    const data: uPlot.AlignedData = [b.map((x) => Date.parse(x.start) / 1000), b.map((x) => x.legs), b.map((x) => x.attempts), b.map((x) => x.answered)];
    const width = Math.max(300, el.current.clientWidth);
    const plot = new uPlot(
      {
        width,
        height: 240,
        series: [{}, { label: 'legs', stroke: '#8c959f' }, { label: 'attempts', stroke: '#0b5cad' }, { label: 'answered', stroke: '#1a7f37' }],
        axes: [{}, { label: 'legs' }],
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC'),
      },
      data,
      el.current,
    );
    const resize = () => el.current && plot.setSize({ width: Math.max(300, el.current.clientWidth), height: 240 });
    window.addEventListener('resize', resize);
    return () => {
      window.removeEventListener('resize', resize);
      plot.destroy();
    };
  }, [series]);
  return <div ref={el} className="chart" role="img" aria-label={`Legs, attempts and answered per bucket, ${series.buckets.length} buckets`} data-testid="chart" />;
};

export type { Kpis };
