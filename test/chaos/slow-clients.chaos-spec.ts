import { connect, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@lib/testing';
import { healthStatus, startLedger, waitUntil, type LedgerProcess } from './support/ledger-process.js';

/**
 * 400 unauthenticated-looking connections each holding a body just under the 1 MiB limit (one byte short, so
 * that it never completes): the service buffers at most LEDGER_MAX_BODY_BYTES_IN_FLIGHT of them, refuses the
 * rest with 503 before reading, keeps /health answering, and its memory stays bounded.
 */

const MB = 1024 * 1024;
const CONNECTIONS = 400;
const BODY = MB - 16;

let db: TestDatabase;
let ledger: LedgerProcess | null = null;
const sockets: Socket[] = [];
beforeAll(async () => {
  db = await createTestDatabase(4);
});
afterAll(async () => {
  for (const s of sockets) s.destroy();
  await ledger?.stop('SIGKILL');
  await db.drop();
});

interface Slow {
  socket: Socket;
  answer: string;
  closed: boolean;
}

const holdBody = (port: number): Promise<Slow> =>
  new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1', () => {
      const slow: Slow = { socket, answer: '', closed: false };
      socket.on('data', (d: Buffer) => (slow.answer += d.toString('latin1')));
      socket.on('error', () => undefined);
      socket.on('close', () => (slow.closed = true));
      socket.write(
        `POST /v1/webhooks/freeclimb HTTP/1.1\r\nHost: ledger.example.com\r\nContent-Type: application/json\r\n` +
          `FreeClimb-Signature: t=1,v1=00\r\nContent-Length: ${BODY}\r\n\r\n`,
      );
      // All of the body but its last byte.
      socket.write(Buffer.alloc(BODY - 1, 0x20));
      resolve(slow);
    });
    socket.once('error', reject);
    sockets.push(socket);
  });

describe('slow clients', () => {
  it(`${CONNECTIONS} connections holding bodies just under the limit: the excess is refused with 503 before its body is read, /health answers, memory stays bounded`, async () => {
    ledger = await startLedger({ DATABASE_URL: db.url });
    const port = Number(new URL(ledger.url).port);
    const baseline = ledger.rss()!;
    let peak = baseline;
    const sampler = setInterval(() => (peak = Math.max(peak, ledger!.rss() ?? 0)), 50);

    const slow: Slow[] = [];
    for (let i = 0; i < CONNECTIONS; i++) slow.push(await holdBody(port));
    // Each connection is either refused (answered and closed) or holds its reservation, waiting for its last byte.
    const refused = () => slow.filter((s) => s.answer.startsWith('HTTP/1.1 503'));
    // The service answers 503 and closes while the client is still sending its body; the client's kernel may then
    // get a reset that drops the 503 before it is read (TCP discards unread data on RST). Such a connection was
    // refused all the same: closed by the service, holding nothing. What must not happen is a connection left open
    // with no answer beyond the budget.
    const shut = () => slow.filter((s) => s.closed || s.answer !== '');
    // Every connection past the budget is answered; the last refusals may still be on their way when most have
    // arrived, so this waits for all of them (a service that held a 33rd body would time out here and fail).
    await waitUntil('the connections over the budget to be refused', () => shut().length >= CONNECTIONS - 32, 120_000);
    expect(refused().length).toBeGreaterThan(0);
    expect(await healthStatus(ledger.url)).toBe(200);
    // Let the held bodies finish arriving in the service before the memory is read.
    await waitUntil('the held bodies to be buffered', () => slow.every((s) => s.closed || s.socket.writableLength === 0), 60_000);
    clearInterval(sampler);
    peak = Math.max(peak, ledger.rss() ?? 0);

    const held = slow.filter((s) => !s.closed && s.answer === '');
    console.info(
      `slow clients: ${refused().length} refused with 503 read by the client, ${shut().length - refused().length} closed (the 503 lost to a reset), ${held.length} held; RSS ${(baseline / MB).toFixed(0)} MiB -> peak ${(peak / MB).toFixed(0)} MiB`,
    );
    // The default budget (32 MiB) holds 32 bodies of 1 MiB.
    expect(held.length).toBeLessThanOrEqual(32);
    for (const s of refused()) {
      expect(s.answer).toMatch(/retry-after: \d+/i);
      expect(s.answer).toContain('"code":"SERVICE.UNAVAILABLE"');
    }
    // A generous guard only: the bodies the old edge buffered took it from 136 to 510 MiB.
    expect(peak - baseline).toBeLessThan(200 * MB);
    expect(ledger.child.exitCode).toBeNull();
  });
});
