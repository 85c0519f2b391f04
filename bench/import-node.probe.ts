/**
 * `node dist/bench/import-node.probe.js` (after `nest build ledger`): the service's CPU per import line without
 * HTTP, PostgreSQL or the projector: parse and check the NDJSON line, translate it into a record, stage it as
 * COPY text in the chunk's buffers, read them as COPY pieces. ROWS (default 30,000), ROUNDS (default 3). Run under `--cpu-prof` to see
 * where a line's time goes.
 */
import { importLine } from '../libs/simulator/src/index.js';
import { ProviderRegistry } from '../libs/providers/src/index.js';
import { StagedChunk } from '../libs/event-store/src/index.js';
import { importLineRecord } from '../apps/ledger/src/import/import-line.schema.js';
import { simulatedDeliveries } from './ingest.bench.js';

const rows = Number(process.env.ROWS ?? 30_000);
const rounds = Number(process.env.ROUNDS ?? 3);
const lines = simulatedDeliveries('bench-import', rows, 'import').map(importLine);
const providers = new ProviderRegistry({ freeclimb: [], jambonz: [], twilio: [], restcomm: [] }, undefined);
for (let round = 1; round <= rounds; round += 1) {
  const cpu0 = process.cpuUsage();
  const chunk = new StagedChunk<number>();
  let bytes = 0;
  lines.forEach((raw, i) => {
    const parsed = importLineRecord(raw, 1 << 20, providers);
    if ('error' in parsed) throw new Error(parsed.error);
    chunk.add(parsed.record, i);
    if (chunk.length >= 2000) {
      for (const piece of chunk.copyData('receipts')) bytes += piece.length;
      for (const piece of chunk.copyData('events')) bytes += piece.length;
      chunk.clear();
    }
  });
  const cpu = process.cpuUsage(cpu0);
  console.log(`round ${round}: ${((cpu.user + cpu.system) / rows).toFixed(1)} µs CPU per line (${(bytes / rows).toFixed(0)} bytes of COPY text per line)`);
}
