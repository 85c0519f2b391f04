import { describe, expect, it } from 'vitest';
import { newEvent } from '@lib/ledger';
import type { EventStoreRepository } from './event-store.repository.js';
import { GroupCommitWriter } from './group-commit-writer.js';
import type { AppendOutcome, WebhookRecord } from './webhook-record.js';

const pgError = (code: string) => Object.assign(new Error(`pg error ${code}`), { code });

const rec = (legId: string): WebhookRecord => ({
  receipt: {
    provider: 'jambonz', body: Buffer.from(legId), bodySha256: Buffer.alloc(32), contentType: null, path: '', query: '', headers: {},
    remoteAddr: null, receivedAt: new Date(), source: 'live', signatureStatus: 'verified', signatureTimestamp: null,
  },
  events: [newEvent('CallRinging', legId, { sipStatus: 180 })],
});

/** A store that fails as told: the writer's decisions are what is tested here (the SQL is tested in the int-spec). */
const failingStore = (fail: (batch: readonly WebhookRecord[], call: number) => Error | null) => {
  const calls: string[][] = [];
  const store = {
    appendBatch: async (batch: readonly WebhookRecord[]): Promise<AppendOutcome[]> => {
      calls.push(batch.map((r) => r.events[0]!.type === 'UnrecognizedWebhook' ? `unrecognized:${r.receipt.body}` : String(r.receipt.body)));
      const err = fail(batch, calls.length);
      if (err) throw err;
      return batch.map((r, i) => ({ receiptId: String(i), position: '1', duplicate: false, events: r.events.map((e) => e.type) }));
    },
  };
  return { store: store as unknown as EventStoreRepository, calls };
};

describe('GroupCommitWriter error handling', () => {
  it.each(['40P01', '40001', '55P03', '57014', '53300'])('retries a batch after %s and stores it with its real events', async (code) => {
    const { store, calls } = failingStore((_b, n) => (n <= 2 ? pgError(code) : null));
    const writer = new GroupCommitWriter(store, { batchMax: 10, queueMax: 10, concurrency: 1, retryBaseMs: 1 });
    const outcomes = await Promise.all([writer.submit(rec('a')), writer.submit(rec('b'))]);
    expect(outcomes.map((o) => o.events)).toEqual([['CallRinging'], ['CallRinging']]);
    expect(calls.flat().some((c) => c.startsWith('unrecognized'))).toBe(false);
    expect(writer.stats.retries).toBe(2);
  });

  it('answers 503 with Retry-After when the transient error outlasts the retries, and stores nothing as unrecognized', async () => {
    const { store, calls } = failingStore(() => pgError('40P01'));
    const writer = new GroupCommitWriter(store, { batchMax: 10, queueMax: 10, concurrency: 1, transientRetries: 2, retryBaseMs: 1 });
    await expect(writer.submit(rec('a'))).rejects.toMatchObject({ code: 'SERVICE.UNAVAILABLE', retryAfterSec: 1 });
    expect(calls).toEqual([['a'], ['a'], ['a']]);
  });

  it('splits a batch only on a data error, and keeps the culprit alone as unrecognized', async () => {
    const { store, calls } = failingStore((b) => (b.some((r) => String(r.receipt.body) === 'bad' && r.events[0]!.type !== 'UnrecognizedWebhook') ? pgError('22P05') : null));
    const writer = new GroupCommitWriter(store, { batchMax: 10, queueMax: 10, concurrency: 1 });
    const outcomes = await Promise.all(['a', 'bad', 'c', 'd'].map((id) => writer.submit(rec(id))));
    expect(outcomes.map((o) => o.events)).toEqual([['CallRinging'], ['UnrecognizedWebhook'], ['CallRinging'], ['CallRinging']]);
    expect(calls.at(-1)).toEqual(['unrecognized:bad']);
  });

  it('does not split or file as unrecognized on an error that is not the data (a missing function, a permission)', async () => {
    const { store, calls } = failingStore(() => pgError('42501'));
    const writer = new GroupCommitWriter(store, { batchMax: 10, queueMax: 10, concurrency: 1 });
    const settled = await Promise.allSettled([writer.submit(rec('a')), writer.submit(rec('b'))]);
    expect(settled.map((s) => s.status)).toEqual(['rejected', 'rejected']);
    expect((settled[0] as PromiseRejectedResult).reason).toMatchObject({ code: 'SERVICE.UNAVAILABLE' });
    expect(calls.flat()).toEqual(['a', 'b']);
  });
});

/** A store whose every append commits one macrotask later, recording how many appends were in flight at once. */
const countingStore = () => {
  const seen = { inFlight: 0, maxInFlight: 0, sizes: [] as number[], inFlightAt: [] as number[] };
  const store = {
    appendBatch: async (batch: readonly WebhookRecord[]): Promise<AppendOutcome[]> => {
      seen.inFlight += 1;
      seen.maxInFlight = Math.max(seen.maxInFlight, seen.inFlight);
      seen.sizes.push(batch.length);
      seen.inFlightAt.push(seen.inFlight);
      await new Promise((r) => setImmediate(r));
      seen.inFlight -= 1;
      return batch.map((r, i) => ({ receiptId: String(i), position: '1', duplicate: false, events: r.events.map((e) => e.type) }));
    },
  };
  return { store: store as unknown as EventStoreRepository, seen };
};

/** `appenders` callers, each submitting its next delivery as soon as the previous one is answered. */
const appenders = async (writer: GroupCommitWriter, appenders: number, each: number) => {
  await Promise.all(
    Array.from({ length: appenders }, async (_, a) => {
      for (let i = 0; i < each; i += 1) await writer.submit(rec(`${a}-${i}`));
    }),
  );
};

describe('GroupCommitWriter adaptive concurrency', () => {
  it('lets up to maxConcurrency transactions run while the load is low (8 appenders)', async () => {
    const { store, seen } = countingStore();
    const writer = new GroupCommitWriter(store, { batchMax: 500, queueMax: 1000, concurrency: 2, maxConcurrency: 8 });
    await appenders(writer, 8, 40);
    expect(seen.maxInFlight).toBe(8);
    // Once grown, each appender's delivery starts its own transaction instead of waiting for a slot.
    expect(seen.sizes.slice(-40).every((n) => n <= 2)).toBe(true);
  });

  it('keeps `concurrency` transactions of large batches under load (64 appenders)', async () => {
    const { store, seen } = countingStore();
    const writer = new GroupCommitWriter(store, { batchMax: 500, queueMax: 1000, concurrency: 2, maxConcurrency: 8 });
    await appenders(writer, 64, 20);
    // Past the first burst (the average load starts at zero) and before the appenders run out.
    const middle = { from: 10, to: seen.sizes.length - 8 };
    expect(middle.to - middle.from).toBeGreaterThan(20);
    expect(Math.max(...seen.inFlightAt.slice(middle.from, middle.to))).toBe(2);
    const sizes = seen.sizes.slice(middle.from, middle.to);
    expect(sizes.reduce((a, b) => a + b, 0) / sizes.length).toBeGreaterThan(16);
  });

  it('never exceeds `concurrency` without maxConcurrency', async () => {
    const { store, seen } = countingStore();
    const writer = new GroupCommitWriter(store, { batchMax: 500, queueMax: 1000, concurrency: 2 });
    await appenders(writer, 64, 20);
    expect(seen.maxInFlight).toBe(2);
  });
});

describe('GroupCommitWriter batch forming', () => {
  it('8 appenders share one transaction rather than two or three each', async () => {
    const { store, seen } = countingStore();
    const writer = new GroupCommitWriter(store, { batchMax: 500, queueMax: 1000, concurrency: 2 });
    await appenders(writer, 8, 20);
    // The first delivery of an idle writer goes alone at once; then all eight go together, each time.
    expect(seen.sizes).toEqual([1, ...Array.from({ length: 19 }, () => 8), 7]);
  });

  it('64 appenders: no transaction of one or two beside a large batch, and two batches in flight', async () => {
    const { store, seen } = countingStore();
    const writer = new GroupCommitWriter(store, { batchMax: 500, queueMax: 1000, concurrency: 2 });
    await appenders(writer, 64, 20);
    const sizes = seen.sizes.slice(2);
    expect(Math.min(...sizes)).toBeGreaterThanOrEqual(16);
    expect(seen.inFlightAt.filter((n) => n === 2).length).toBeGreaterThan(sizes.length / 2);
  });

  it('shares the queue over free slots only in parts of at least 16', async () => {
    const { store, seen } = countingStore();
    const writer = new GroupCommitWriter(store, { batchMax: 500, queueMax: 1000, concurrency: 2 });
    await writer.submit(rec('first'));
    // Its commit left a pump due at the end of this turn: what is submitted now is queued together, two slots free.
    await Promise.all(Array.from({ length: 20 }, (_, i) => writer.submit(rec(`a${i}`))));
    await Promise.all(Array.from({ length: 40 }, (_, i) => writer.submit(rec(`b${i}`))));
    // 20 as one batch (not 16, and 4 waiting for it), 40 as two.
    expect(seen.sizes).toEqual([1, 20, 20, 20]);
  });

  it('a delivery does not wait behind the passengers riding in the transaction in flight', async () => {
    const calls: string[][] = [];
    let release = () => undefined as void;
    const held = new Promise<void>((r) => (release = r));
    const store = {
      appendBatch: async (batch: readonly WebhookRecord[]): Promise<AppendOutcome[]> => {
        calls.push(batch.map((r) => String(r.receipt.body)));
        if (calls.length === 1) await held;
        return batch.map((r, i) => ({ receiptId: String(i), position: '1', duplicate: false, events: r.events.map((e) => e.type) }));
      },
    } as unknown as EventStoreRepository;
    const writer = new GroupCommitWriter(store, { batchMax: 10, queueMax: 10, concurrency: 2 });
    const answers = ['a1', 'a2', 'a3'].map((id) => writer.ride(rec(id), { lingerMs: 600_000, deadlineMs: 0 }));
    const first = writer.submit(rec('d1'));
    // Answered while the first transaction is still held: it took the free slot instead of waiting for it.
    await writer.submit(rec('d2'));
    expect(calls).toEqual([['d1', 'a1', 'a2', 'a3'], ['d2']]);
    release();
    await Promise.all([first, ...answers]);
  });

  it('records submitted in one turn of the event loop go together once a transaction is in flight', async () => {
    const { store, seen } = countingStore();
    const writer = new GroupCommitWriter(store, { batchMax: 500, queueMax: 1000, concurrency: 2 });
    await Promise.all(['a', 'b', 'c', 'd'].map((id) => writer.submit(rec(id))));
    expect(seen.sizes).toEqual([1, 3]);
  });
});

describe('GroupCommitWriter linger (tee answers)', () => {
  it('without linger a record goes out alone at once; with it, records queued within the window share one transaction', async () => {
    const plain = failingStore(() => null);
    const eager = new GroupCommitWriter(plain.store, { batchMax: 10, queueMax: 10, concurrency: 1 });
    await Promise.all([eager.submit(rec('a')), eager.submit(rec('b')), eager.submit(rec('c'))]);
    expect(plain.calls).toEqual([['a'], ['b', 'c']]);

    const gathered = failingStore(() => null);
    const lingering = new GroupCommitWriter(gathered.store, { batchMax: 10, queueMax: 10, concurrency: 1, lingerMs: 20 });
    await Promise.all([lingering.submit(rec('a')), lingering.submit(rec('b')), lingering.submit(rec('c'))]);
    expect(gathered.calls).toEqual([['a', 'b', 'c']]);
  });

  it('a full batch does not wait for the window', async () => {
    const { store, calls } = failingStore(() => null);
    // A window far longer than the test: only a full batch can have been written.
    const writer = new GroupCommitWriter(store, { batchMax: 2, queueMax: 10, concurrency: 1, lingerMs: 600_000 });
    await Promise.all([writer.submit(rec('a')), writer.submit(rec('b'))]);
    expect(calls).toEqual([['a', 'b']]);
  });
});

describe('GroupCommitWriter passengers (tee answers)', () => {
  it('a record that rides goes in the transaction of the next submitted batch, after its records', async () => {
    const { store, calls } = failingStore(() => null);
    const writer = new GroupCommitWriter(store, { batchMax: 10, queueMax: 10, concurrency: 1 });
    // A linger far longer than the test: only a submitted batch can have carried it.
    const answer = writer.ride(rec('answer'), { lingerMs: 600_000, deadlineMs: 0 });
    await writer.submit(rec('delivery'));
    await answer;
    expect(calls).toEqual([['delivery', 'answer']]);
  });

  it('takes a transaction of its own once no batch came within its linger', async () => {
    const { store, calls } = failingStore(() => null);
    const writer = new GroupCommitWriter(store, { batchMax: 10, queueMax: 10, concurrency: 1 });
    await Promise.all([writer.ride(rec('a'), { lingerMs: 20, deadlineMs: 0 }), writer.ride(rec('b'), { lingerMs: 20, deadlineMs: 0 })]);
    expect(calls).toEqual([['a', 'b']]);
  });

  it('a bad passenger is split off without failing the delivery it rode with', async () => {
    const { store, calls } = failingStore((batch) =>
      batch.some((r) => String(r.receipt.body) === 'bad' && r.events[0]!.type !== 'UnrecognizedWebhook') ? pgError('22P02') : null,
    );
    const writer = new GroupCommitWriter(store, { batchMax: 10, queueMax: 10, concurrency: 1 });
    const answer = writer.ride(rec('bad'), { lingerMs: 600_000, deadlineMs: 0 });
    const delivery = await writer.submit(rec('delivery'));
    expect(delivery.events).toEqual(['CallRinging']);
    expect((await answer).events).toEqual(['UnrecognizedWebhook']);
    expect(calls).toEqual([['delivery', 'bad'], ['delivery'], ['bad'], ['unrecognized:bad']]);
  });

  it('settle sends the lingering passengers at once and resolves when they are written', async () => {
    const { store, calls } = failingStore(() => null);
    const writer = new GroupCommitWriter(store, { batchMax: 10, queueMax: 10, concurrency: 1 });
    const answer = writer.ride(rec('answer'), { lingerMs: 600_000, deadlineMs: 0 });
    await writer.settle();
    expect(calls).toEqual([['answer']]);
    expect((await answer).events).toEqual(['CallRinging']);
  });
});
