import { createServer, type IncomingHttpHeaders } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface StubRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  body: Buffer;
}

export interface StubAnswer {
  status?: number;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Answer only once this resolves (a slow app). */
  after?: Promise<unknown>;
}

export interface StubApp {
  /** `http://127.0.0.1:<port>` */
  base: string;
  seen: StubRequest[];
  close(): Promise<void>;
}

/** A real HTTP server standing in for the customer's app behind the ledger (tee mode). */
export const startStubApp = async (answer: (req: StubRequest) => StubAnswer): Promise<StubApp> => {
  const seen: StubRequest[] = [];
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const r: StubRequest = { method: req.method!, url: req.url!, headers: req.headers, body: Buffer.concat(chunks) };
      seen.push(r);
      const a = answer(r);
      void Promise.resolve(a.after).then(() => {
        if (res.destroyed) return;
        res.writeHead(a.status ?? 200, a.headers ?? {});
        res.end(a.body ?? '');
      });
    });
  });
  server.keepAliveTimeout = 1000;
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    seen,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
};
