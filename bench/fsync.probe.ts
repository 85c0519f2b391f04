/**
 * `node dist/bench/fsync.probe.js` (after `nest build ledger`): what one durable commit's WAL flush costs on the
 * disk the benchmarks' PostgreSQL writes to. The embedded PostgreSQL ships without `pg_test_fsync`, so this does
 * what its `fdatasync` line does (PostgreSQL's wal_sync_method here): write 8 kB at a rotating offset of a
 * preallocated 16 MB file, then fdatasync, one operation at a time, and prints the percentiles of each
 * operation's time instead of only their mean. DIR (default the OS temporary directory, where the benches put
 * their data), OPS (default 2000), SIZE_KB (default 8).
 */
import { closeSync, fdatasyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fmt, isMain, percentile } from './bench-support.js';

export interface FsyncFigures {
  ops: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
  mean: number;
}

export const probeFsync = (opts: { dir?: string; ops?: number; sizeKb?: number } = {}): FsyncFigures => {
  const dir = mkdtempSync(join(opts.dir ?? tmpdir(), 'fsync-probe-'));
  const file = join(dir, 'wal');
  const ops = opts.ops ?? 2000;
  const block = Buffer.alloc((opts.sizeKb ?? 8) * 1024, 0x5a);
  const fileBytes = 16 * 1024 * 1024;
  const fd = openSync(file, 'w+');
  try {
    // Preallocated and flushed first, as a WAL segment is: the timed writes then change no file size.
    for (let off = 0; off < fileBytes; off += 1024 * 1024) writeSync(fd, Buffer.alloc(1024 * 1024), 0, 1024 * 1024, off);
    fdatasyncSync(fd);
    const times: number[] = [];
    let off = 0;
    for (let i = 0; i < ops; i++) {
      const t = performance.now();
      writeSync(fd, block, 0, block.length, off);
      fdatasyncSync(fd);
      times.push(performance.now() - t);
      off = (off + block.length) % fileBytes;
    }
    return {
      ops,
      p50: percentile(times, 0.5),
      p90: percentile(times, 0.9),
      p99: percentile(times, 0.99),
      max: Math.max(...times),
      mean: times.reduce((a, b) => a + b, 0) / ops,
    };
  } finally {
    closeSync(fd);
    rmSync(dir, { recursive: true, force: true });
  }
};

if (isMain(import.meta.url)) {
  const f = probeFsync({ dir: process.env.DIR, ops: process.env.OPS ? Number(process.env.OPS) : undefined, sizeKb: process.env.SIZE_KB ? Number(process.env.SIZE_KB) : undefined });
  console.log(
    `write ${process.env.SIZE_KB ?? 8} kB + fdatasync, ${f.ops} ops: mean ${fmt(f.mean, 3)} ms  p50 ${fmt(f.p50, 3)} ms  p90 ${fmt(f.p90, 3)} ms  p99 ${fmt(f.p99, 3)} ms  max ${fmt(f.max, 3)} ms`,
  );
}
