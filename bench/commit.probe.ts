/**
 * `node dist/bench/commit.probe.js` (after `nest build ledger`): the floor under tee mode's added latency. One
 * FreeClimb delivery per transaction (`appendBatch` of one record: `ledger_append` and its durable commit), one every
 * 1/RATE s (default 200/s, open loop) for SECONDS (default 10), on a fresh embedded PostgreSQL of its own, with no
 * HTTP, no service and no projector around it; prints p50/p90/p99/max of each commit's wall time. The tee answers
 * a provider only after its delivery has committed, so where this p99 is above 5 ms the issue's target cannot be
 * met by the service, whatever it does around the commit. BENCH_RATE=0: one commit at a time, each started when
 * the previous one has committed (no queueing: the cost of one durable commit alone).
 *
 * `CommitFloor` is the same probe as rounds of a larger run: the tee benches (tee.bench.ts, tee.compare.ts) alternate
 * it with their routes, so that the floor they print was measured under the same load of the shared machine.
 */
import { createHash, randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createDatabase, migrateToLatest, startEmbeddedPostgres, type EmbeddedPostgresHandle } from '../libs/db/src/index.js';
import type { Database } from '../libs/db/src/index.js';
import { EventStoreRepository } from '../libs/event-store/src/index.js';
import { translateFreeclimbWebhook } from '../libs/providers/src/freeclimb/freeclimb.translate.js';
import { fmt, isMain, percentile } from './bench-support.js';

/** One FreeClimb delivery of a new call (its own stream), as the tee benches send. */
export const mkCommitRecord = () => {
  const body = Buffer.from(
    JSON.stringify({
      accountId: 'AC' + 'b'.repeat(40), callId: `CA${randomUUID().replace(/-/g, '')}`, parentCallId: null, from: '+13125550147', to: '+13125550100',
      callStatus: 'ringing', direction: 'inbound', requestType: 'inboundCall', conferenceId: null, queueId: null,
    }),
  );
  return {
    receipt: {
      provider: 'freeclimb' as const, body, bodySha256: createHash('sha256').update(body).digest(), contentType: 'application/json', path: 'voice', query: '',
      headers: {}, remoteAddr: null, receivedAt: new Date(), source: 'live' as const, signatureStatus: 'verified' as const, signatureTimestamp: null,
    },
    events: translateFreeclimbWebhook(body, { provider: 'freeclimb', path: 'voice', query: new URLSearchParams(), contentType: 'application/json' }),
  };
};

/** One durable commit of one delivery, timed, on an embedded PostgreSQL of its own. */
export class CommitFloor {
  private constructor(
    private readonly dataDir: string,
    private readonly pgs: EmbeddedPostgresHandle,
    private readonly db: Database,
    private readonly store: EventStoreRepository,
  ) {}

  static async start(): Promise<CommitFloor> {
    const dataDir = await mkdtemp(join(tmpdir(), 'commit-probe-'));
    const pgs = await startEmbeddedPostgres({ dataDir, log: () => undefined });
    const { db } = createDatabase(pgs.url, 4);
    await migrateToLatest(db);
    return new CommitFloor(dataDir, pgs, db, new EventStoreRepository(db));
  }

  /** Commits at `rate` per second (open loop) for `warmup` + `seconds`; the times of the last `seconds` go `into`. */
  async phase(rate: number, seconds: number, warmup: number, into: number[]): Promise<void> {
    const pending: Promise<void>[] = [];
    const start = performance.now();
    const total = Math.round((seconds + warmup) * rate);
    for (let i = 0; i < total; i++) {
      const wait = start + (i * 1000) / rate - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const record = mkCommitRecord();
      const t = performance.now();
      pending.push(
        this.store.appendBatch([record]).then(() => {
          if (i >= warmup * rate) into.push(performance.now() - t);
        }),
      );
    }
    await Promise.all(pending);
  }

  /** One commit at a time, each started when the previous one has committed (no queueing). */
  async sequential(seconds: number, warmup: number, into: number[]): Promise<void> {
    const start = performance.now();
    while (performance.now() - start < (seconds + warmup) * 1000) {
      const t = performance.now();
      await this.store.appendBatch([mkCommitRecord()]);
      if (performance.now() - start > warmup * 1000) into.push(performance.now() - t);
    }
  }

  async stop(): Promise<void> {
    await this.db.destroy();
    await this.pgs.stop();
    await rm(this.dataDir, { recursive: true, force: true });
  }
}

if (isMain(import.meta.url)) {
  const RATE = Number(process.env.BENCH_RATE ?? 200);
  const SECONDS = Number(process.env.BENCH_SECONDS ?? 10);
  const floor = await CommitFloor.start();
  try {
    const times: number[] = [];
    // The first second warms the plans and the caches up.
    if (RATE === 0) await floor.sequential(SECONDS, 1, times);
    else await floor.phase(RATE, SECONDS, 1, times);
    console.log(
      `one delivery per transaction ${RATE === 0 ? 'one at a time' : `at ${RATE}/s`}, ${times.length} commits: p50 ${fmt(percentile(times, 0.5), 2)} ms  p90 ${fmt(percentile(times, 0.9), 2)} ms  ` +
        `p99 ${fmt(percentile(times, 0.99), 2)} ms  max ${fmt(Math.max(...times), 2)} ms`,
    );
  } finally {
    await floor.stop();
  }
}
