/**
 * `node dist/bench/checkpoint.probe.js`: what an audit checkpoint costs the webhooks it shares the machine with.
 * On an embedded PostgreSQL of its own, each round appends a minute of traffic (DELIVERIES, default 12,000 FreeClimb
 * deliveries, one stream each, as 200 calls/s make), then runs one durable commit of one delivery every 1/RATE s
 * (default 200/s) for SECONDS (default 4) and takes a checkpoint of the whole minute one second in. It prints, per
 * variant, the checkpoint's wall time, the event loop's longest delay while it ran, and the commits' p50 / p99 / max
 * split into those that overlapped the checkpoint and those that did not.
 *
 * OLD_DIR=<another built checkout>: its CheckpointRepository is the variant "old", alternated round by round with
 * this build's on the same database (the tables are the same), ROUNDS (default 3) rounds each.
 */
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { join, resolve } from 'node:path';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { pathToFileURL } from 'node:url';
import { createDatabase, migrateToLatest, startEmbeddedPostgres } from '../libs/db/src/index.js';
import type { Database } from '../libs/db/src/index.js';
import { CheckpointRepository, EventStoreRepository } from '../libs/event-store/src/index.js';
import { mkCommitRecord } from './commit.probe.js';
import { fmt, isMain, percentile } from './bench-support.js';

const DELIVERIES = Number(process.env.DELIVERIES ?? 12_000);
const RATE = Number(process.env.RATE ?? 200);
const SECONDS = Number(process.env.SECONDS ?? 4);
const ROUNDS = Number(process.env.ROUNDS ?? 3);

interface Variant {
  name: string;
  repo: { create(signer: null, onlyIfChanged: boolean): Promise<{ headCount: number } | null> };
}

interface Sample {
  start: number;
  end: number;
}

const fill = async (store: EventStoreRepository, n: number): Promise<void> => {
  for (let i = 0; i < n; i += 50) await store.appendBatch(Array.from({ length: Math.min(50, n - i) }, mkCommitRecord));
};

/** Commits at RATE for SECONDS; a checkpoint starts one second in. */
const round = async (store: EventStoreRepository, variant: Variant): Promise<{ checkpointMs: number; heads: number; loopMaxMs: number; during: number[]; outside: number[] }> => {
  const samples: Sample[] = [];
  const pending: Promise<void>[] = [];
  let checkpoint: { from: number; to: number } | null = null;
  let heads = 0;
  const loop = monitorEventLoopDelay({ resolution: 1 });
  const start = performance.now();
  const timer = setTimeout(() => {
    const from = performance.now();
    loop.enable();
    pending.push(
      variant.repo.create(null, true).then((c) => {
        loop.disable();
        heads = c?.headCount ?? 0;
        checkpoint = { from, to: performance.now() };
      }),
    );
  }, 1000);
  const total = Math.round(SECONDS * RATE);
  for (let i = 0; i < total; i++) {
    const wait = start + (i * 1000) / RATE - performance.now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const t = performance.now();
    pending.push(store.appendBatch([mkCommitRecord()]).then(() => void samples.push({ start: t, end: performance.now() })));
  }
  clearTimeout(timer);
  await Promise.all(pending);
  const c = checkpoint as { from: number; to: number } | null;
  if (c === null) throw new Error('the checkpoint did not run');
  return { checkpointMs: c.to - c.from, heads, loopMaxMs: loop.max / 1e6, during: samples.filter((x) => x.end >= c.from && x.start <= c.to).map((x) => x.end - x.start), outside: samples.filter((x) => x.end < c.from || x.start > c.to).map((x) => x.end - x.start) };
};

export const main = async (): Promise<void> => {
  const dataDir = await mkdtemp(join(tmpdir(), 'checkpoint-probe-'));
  const pgs = await startEmbeddedPostgres({ dataDir, log: () => undefined });
  const { db } = createDatabase(pgs.url, 4);
  try {
    await migrateToLatest(db);
    const store = new EventStoreRepository(db);
    const variants: Variant[] = [{ name: 'new', repo: new CheckpointRepository(db) }];
    if (process.env.OLD_DIR) {
      const mod = (await import(pathToFileURL(join(resolve(process.env.OLD_DIR), 'dist/libs/event-store/src/checkpoint.repository.js')).href)) as { CheckpointRepository: new (db: Database) => Variant['repo'] };
      variants.unshift({ name: 'old', repo: new mod.CheckpointRepository(db) });
    }
    // A first checkpoint of nothing much, so that every measured one covers exactly its round's minute.
    await new CheckpointRepository(db).create(null, false);
    for (let r = 0; r < ROUNDS; r++) {
      for (const v of variants) {
        await fill(store, DELIVERIES);
        const x = await round(store, v);
        const f = (xs: number[]) => `n=${xs.length} p50 ${fmt(percentile(xs, 0.5), 2)} p99 ${fmt(percentile(xs, 0.99), 2)} max ${fmt(Math.max(...xs), 2)} ms`;
        console.log(`${v.name} round ${r + 1}: ${x.heads} heads in ${fmt(x.checkpointMs, 1)} ms, loop delay max ${fmt(x.loopMaxMs, 1)} ms; commits during it ${f(x.during)}; the others ${f(x.outside)}`);
      }
    }
  } finally {
    await db.destroy();
    await pgs.stop();
    await rm(dataDir, { recursive: true, force: true });
  }
};

if (isMain(import.meta.url)) await main();
