/**
 * `npm run bench:ingest`: the service as its own process on a fresh embedded PostgreSQL; autocannon drives
 * 64 connections at (1) POST /internal/noop, the same framework path without I/O, and (2) signed jambonz
 * webhooks, each one distinct, so that every request is a real durable append. Then an NDJSON import.
 */
import autocannon from 'autocannon';
import { randomUUID } from 'node:crypto';
import { signTimestampedHmac } from '../libs/providers/src/shared/timestamped-hmac.js';
import { fmt, startService } from './bench-support.js';

const SECRET = 'bench-secret';
const API_KEY = 'bench-key';
const DURATION = Number(process.env.BENCH_DURATION ?? 10);
const CONNECTIONS = 64;
const IMPORT_ROWS = Number(process.env.BENCH_IMPORT_ROWS ?? 100_000);

const statuses = ['trying', 'ringing', 'in-progress', 'completed'];
const jambonzBody = (i: number) =>
  JSON.stringify({
    call_sid: randomUUID(),
    direction: 'outbound',
    from: '+14155550123',
    to: `+1617555${String(i % 10000).padStart(4, '0')}`,
    call_id: randomUUID(),
    sip_status: 200,
    sip_reason: 'OK',
    call_status: statuses[i % 4],
    account_sid: 'a749fdf4-139c-426a-83af-461f6bdd3f5c',
    application_sid: '6dc3f73c-423a-4983-ad05-6d36abdcdde0',
    trace_id: '8c1f0e5b7d2a4c39b6e1f0a2d3c4b5a6',
    fs_sip_address: '10.0.12.7:5070',
    parent_call_sid: '4754abdd-3a32-4c0c-91f5-8b1ed1740d2a',
    ...(i % 4 === 3 ? { duration: 42 } : {}),
  });

const run = (opts: autocannon.Options) =>
  new Promise<autocannon.Result>((resolve, reject) => autocannon(opts, (err, res) => (err ? reject(err) : resolve(res))));

export interface IngestFigures {
  noop: { rps: number; p50: number; p99: number };
  ingest: { rps: number; p50: number; p99: number; non2xx: number; errors: number };
  ratio: number;
  importRowsPerSec: number;
  peakRssMb: number;
}

export const benchIngest = async (): Promise<IngestFigures> => {
  const service = await startService({ JAMBONZ_WEBHOOK_SECRET: SECRET, LEDGER_API_KEYS: API_KEY });
  try {
    const noopBody = jambonzBody(0);
    await run({ url: `${service.url}/internal/noop`, connections: CONNECTIONS, duration: 2, method: 'POST', headers: { 'content-type': 'application/json' }, body: noopBody });
    const noop = await run({ url: `${service.url}/internal/noop`, connections: CONNECTIONS, duration: DURATION, method: 'POST', headers: { 'content-type': 'application/json' }, body: noopBody });

    let i = 0;
    const signed = () => {
      const body = jambonzBody(i++);
      return {
        method: 'POST' as const,
        path: '/v1/webhooks/jambonz/status',
        headers: { 'content-type': 'application/json', 'jambonz-signature': signTimestampedHmac([SECRET], Math.floor(Date.now() / 1000), Buffer.from(body)) },
        body,
      };
    };
    await run({ url: service.url, connections: CONNECTIONS, duration: 2, requests: [{ setupRequest: () => signed() }] });
    const ingest = await run({ url: service.url, connections: CONNECTIONS, duration: DURATION, requests: [{ setupRequest: () => signed() }] });

    const lines: string[] = [];
    for (let k = 0; k < IMPORT_ROWS; k++) {
      lines.push(JSON.stringify({ provider: 'jambonz', receivedAt: new Date(Date.UTC(2026, 0, 1) + k * 1000).toISOString(), contentType: 'application/json', body: jambonzBody(k), path: 'status' }));
    }
    const payload = lines.join('\n') + '\n';
    const started = performance.now();
    const res = await fetch(`${service.url}/v1/import`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson', authorization: `Bearer ${API_KEY}` }, body: payload });
    const summary = (await res.json()) as { imported: number };
    const importSec = (performance.now() - started) / 1000;
    if (summary.imported !== IMPORT_ROWS) throw new Error(`import kept ${summary.imported} of ${IMPORT_ROWS}`);

    return {
      noop: { rps: noop.requests.average, p50: noop.latency.p50, p99: noop.latency.p99 },
      ingest: { rps: ingest.requests.average, p50: ingest.latency.p50, p99: ingest.latency.p99, non2xx: ingest.non2xx, errors: ingest.errors },
      ratio: ingest.requests.average / noop.requests.average,
      importRowsPerSec: IMPORT_ROWS / importSec,
      peakRssMb: service.peakRssMb(),
    };
  } finally {
    await service.stop();
  }
};

if (import.meta.url === `file://${process.argv[1]}`) {
  const f = await benchIngest();
  console.log(`\nCall Ledger ingest benchmark (${CONNECTIONS} connections, ${DURATION} s per run, embedded PostgreSQL, fsync on)`);
  console.log(`no-I/O route      ${fmt(f.noop.rps)} req/s   p50 ${f.noop.p50} ms   p99 ${f.noop.p99} ms`);
  console.log(`signed webhooks   ${fmt(f.ingest.rps)} req/s   p50 ${f.ingest.p50} ms   p99 ${f.ingest.p99} ms   (non-2xx ${f.ingest.non2xx}, errors ${f.ingest.errors})`);
  console.log(`ingest / no-I/O   ${fmt(f.ratio * 100, 1)} %   (target >= 40 %, p99 < 25 ms)`);
  console.log(`import            ${fmt(f.importRowsPerSec)} rows/s over ${fmt(IMPORT_ROWS)} rows`);
  console.log(`peak service RSS  ${fmt(f.peakRssMb)} MB`);
}
