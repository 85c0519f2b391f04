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
/** The list filters that select exactly the legs each KPI counts (libs/ledger/src/kpis.ts). */
const ATTEMPTS = { attempt: 'true' };
const ANSWERED = { status: 'completed' };
const MACHINE = { status: 'completed', answeredBy: 'machine,fax' };

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

  const t = data?.now.totals;
  const b = data?.before.totals;

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
      {data && t && b && (
        <>
          <p>
            {since.slice(0, 16).replace('T', ' ')} → {until.slice(0, 16).replace('T', ' ')} UTC, beside the period before it ({prev.since.slice(0, 16).replace('T', ' ')} →).{' '}
            <a href={here({ since: prev.since, until: prev.until })} onClick={onLinkClick}>
              Go to previous period
            </a>
          </p>
          <div className="tiles" data-testid="tiles">
            <Tile name="Legs" now={t.legs} before={b.legs} fmt={fmtNum} href={drill()} />
            <Tile name="Attempts" now={t.attempts} before={b.attempts} fmt={fmtNum} href={drill(ATTEMPTS)} note="the outcomes below add up to it" />
            <Tile name="Answered" now={t.answered} before={b.answered} fmt={fmtNum} href={drill(ANSWERED)} />
            <Tile name="ASR" now={t.asr} before={b.asr} fmt={fmtPct} basis={{ label: 'attempts', count: t.attempts, href: drill(ATTEMPTS) }} />
            <Tile name="NER" now={t.ner} before={b.ner} fmt={fmtPct} basis={{ label: 'attempts', count: t.attempts, href: drill(ATTEMPTS) }} />
            <Tile name="ACD" now={t.acdSec} before={b.acdSec} fmt={fmtSec} basis={{ label: 'answered legs', count: t.answered, href: drill(ANSWERED) }} />
            <Tile name="Avg ring (PDD proxy)" now={t.avgRingSec} before={b.avgRingSec} fmt={fmtSec} basis={{ label: 'attempts', count: t.attempts, href: drill(ATTEMPTS) }} />
            <Tile name="Machine answered" now={t.machineAnswered} before={b.machineAnswered} fmt={fmtNum} href={drill(MACHINE)} />
          </div>
          <h2>Outcomes</h2>
          <div className="tiles" data-testid="outcomes">
            {OUTCOMES.map((o) => (
              <Tile key={o} name={o} now={data.now.totals.outcomes[o]} before={data.before.totals.outcomes[o]} fmt={fmtNum} href={drill({ status: o })} />
            ))}
          </div>
          <h2>Over time ({interval})</h2>
          <Chart series={data.series} onPick={(start) => navigate(drill({}, bucketWindow(start, interval, { since, until })))} />
          <SeriesTable series={data.series} interval={interval} drill={drill} period={{ since, until }} />
          <h2>By {groupBy}</h2>
          <Breakdown summary={data.now} groupBy={groupBy} drill={drill} period={{ since, until }} />
        </>
      )}
    </section>
  );
};

/** A ratio or a mean links to the legs it is computed over (`basis`): the link's count is that list's total. */
const Tile = ({
  name, now, before, fmt, href, note, basis,
}: { name: string; now: number | null; before: number | null; fmt: (n: number | null) => string; href?: string; note?: string; basis?: { label: string; count: number; href: string } }) => (
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
    {basis && (
      <div className="p">
        over{' '}
        <a href={basis.href} onClick={onLinkClick} aria-label={`${name}: over ${fmtNum(basis.count)} ${basis.label}, show these calls`} data-count={basis.count}>
          {fmtNum(basis.count)} {basis.label}
        </a>
      </div>
    )}
    <div className="p">
      previous: {fmt(before)}
      {note && <> · {note}</>}
    </div>
  </div>
);

/** The UTC window of one bucket (a day or an hour), clipped to the period as the API clips its first and last bucket. */
const bucketWindow = (start: string, interval: string, period: { since: string; until: string }) => {
  const s = Date.parse(start);
  const e = s + (interval === 'day' ? DAY : 3_600_000);
  return { since: iso(Math.max(s, Date.parse(period.since))), until: iso(Math.min(e, Date.parse(period.until))) };
};

type Drill = (extra?: Record<string, string>, window?: { since: string; until: string }) => string;

const Counted = ({ n, href, label }: { n: number; href: string | null; label: string }) =>
  href && n > 0 ? (
    <a href={href} onClick={onLinkClick} data-count={n} aria-label={`${fmtNum(n)} ${label}, show these calls`}>
      {fmtNum(n)}
    </a>
  ) : (
    <>{fmtNum(n)}</>
  );

/**
 * The series as a table, every count a link to its bucket's legs: the keyboard and screen-reader way to the same
 * drill-through as a click on the chart. The first and last bucket are clipped to the period, as the API counts them.
 */
const SeriesTable = ({ series, interval, drill, period }: { series: Timeseries; interval: string; drill: Drill; period: { since: string; until: string } }) => {
  const buckets = series.buckets.filter((x) => x.legs > 0);
  return (
    <details data-testid="series-table">
      <summary>Series as a table ({buckets.length} {interval === 'day' ? 'days' : 'hours'} with calls)</summary>
      <div className="scroll">
        <table>
          <thead>
            <tr>
              <th scope="col">{interval === 'day' ? 'Day' : 'Hour'} (UTC)</th>
              <th scope="col">Legs</th>
              <th scope="col">Attempts</th>
              <th scope="col">Answered</th>
              <th scope="col">Machine</th>
            </tr>
          </thead>
          <tbody>
            {buckets.map((x) => {
              const w = bucketWindow(x.start, interval, period);
              return (
                <tr key={x.start} data-bucket={x.start}>
                  <th scope="row">{x.start.slice(0, interval === 'day' ? 10 : 13).replace('T', ' ')}</th>
                  <td><Counted n={x.legs} href={drill({}, w)} label={`legs from ${x.start}`} /></td>
                  <td><Counted n={x.attempts} href={drill(ATTEMPTS, w)} label={`attempts from ${x.start}`} /></td>
                  <td><Counted n={x.answered} href={drill(ANSWERED, w)} label={`answered from ${x.start}`} /></td>
                  <td><Counted n={x.machineAnswered} href={drill(MACHINE, w)} label={`machine-answered from ${x.start}`} /></td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </div>
    </details>
  );
};

const FILTER_OF: Record<string, string | undefined> = { provider: 'provider', accountId: 'accountId', direction: 'direction', status: 'status' };

const Breakdown = ({ summary, groupBy, drill, period }: { summary: Summary; groupBy: string; drill: Drill; period: { since: string; until: string } }) => (
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
          <th scope="col">Machine</th>
        </tr>
      </thead>
      <tbody>
        {summary.groups.map((g) => {
          const filter = FILTER_OF[groupBy];
          // The row's own filter (its key, or its day or hour as the window), plus each column's.
          let of: ((extra: Record<string, string>) => string) | null = null;
          if (g.key !== null && filter) of = (extra) => drill({ ...extra, [filter]: g.key! });
          else if (g.key !== null && (groupBy === 'day' || groupBy === 'hour')) of = (extra) => drill(extra, bucketWindow(g.key!, groupBy, period));
          const label = `${groupBy} ${g.key ?? '(none)'}`;
          return (
            <tr key={g.key ?? '∅'} data-group={g.key ?? ''}>
              <th scope="row">{g.key ?? '(none)'}</th>
              <td data-col="legs">
                <Counted n={g.legs} href={of && of({})} label={`legs of ${label}`} />
              </td>
              <td data-col="attempts">
                <Counted n={g.attempts} href={of && of(ATTEMPTS)} label={`attempts of ${label}`} />
              </td>
              <td data-col="answered">
                <Counted n={g.answered} href={of && of(ANSWERED)} label={`answered of ${label}`} />
              </td>
              <td>{fmtPct(g.asr)}</td>
              <td>{fmtPct(g.ner)}</td>
              <td>{fmtSec(g.acdSec)}</td>
              <td data-col="machine">
                <Counted n={g.machineAnswered} href={of && of(MACHINE)} label={`machine-answered of ${label}`} />
              </td>
            </tr>
          );
        })}
      </tbody>
    </table>
  </div>
);

/** The chart; a click on it opens the calls of the bucket under the cursor (the table below is the keyboard way). */
const Chart = ({ series, onPick }: { series: Timeseries; onPick: (start: string) => void }) => {
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
        // A click drills through, so no drag-to-zoom (uPlot would swallow the click that ends a drag).
        cursor: { drag: { x: false, y: false, setScale: false, click: () => undefined } },
        tzDate: (ts) => uPlot.tzDate(new Date(ts * 1e3), 'Etc/UTC'),
      },
      data,
      el.current,
    );
    // The bucket nearest to the click itself (the cursor's own index is updated a frame later).
    const pick = (e: MouseEvent) => {
      const i = plot.posToIdx(e.clientX - plot.over.getBoundingClientRect().left);
      if (i !== null && i !== undefined && b[i] && b[i].legs > 0) onPick(b[i].start);
    };
    plot.over.addEventListener('click', pick);
    plot.over.style.cursor = 'pointer';
    const resize = () => el.current && plot.setSize({ width: Math.max(300, el.current.clientWidth), height: 240 });
    window.addEventListener('resize', resize);
    return () => {
      window.removeEventListener('resize', resize);
      plot.destroy();
    };
  }, [series]);
  return <div ref={el} className="chart" role="img" aria-label={`Legs, attempts and answered per bucket, ${series.buckets.length} buckets; click a bucket for its calls`} data-testid="chart" />;
};

export type { Kpis };
