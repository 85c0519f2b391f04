import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isProvider, type Provider } from '@lib/ledger';
import { ProviderRegistry } from '@lib/providers';
import { SimulatedApp, type SigningSecrets, type SimCall } from '@lib/simulator';

export interface TeeAppStats {
  requests: number;
  /** Deliveries whose provider signature verified at the app (the ledger passed or re-made it). */
  verified: number;
  /** Deliveries whose signature did not verify at the app, with the first reasons. */
  refused: number;
  firstRefusals: string[];
}

export interface RunningTeeApp {
  /** `http://127.0.0.1:<port>`; the ledger's LEDGER_TEE_<PROVIDER>_URL is this + `/<provider>`. */
  base: string;
  stats: TeeAppStats;
  close(): Promise<void>;
}

/**
 * The app behind the ledger in `--tee` runs: one HTTP server, `/<provider>/…` per dialect. It checks each
 * delivery's signature as the real app would (same secrets, its own URL: FreeClimb and jambonz headers as the
 * provider made them, Twilio's made again by the ledger) and answers with the simulated app's commands. A
 * delivery whose signature fails is answered 403, as an app would, and counted.
 */
export const startTeeApp = async (calls: readonly SimCall[], secrets: SigningSecrets, port = 0): Promise<RunningTeeApp> => {
  const app = new SimulatedApp(calls);
  const stats: TeeAppStats = { requests: 0, verified: 0, refused: 0, firstRefusals: [] };
  let registry: ProviderRegistry | null = null;
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      stats.requests += 1;
      const url = req.url ?? '/';
      const provider = url.split(/[/?]/)[1] ?? '';
      if (!isProvider(provider)) {
        res.writeHead(404).end();
        return;
      }
      const body = Buffer.concat(chunks);
      const q = url.indexOf('?');
      const query = q < 0 ? '' : url.slice(q + 1);
      const verdict = registry!.get(provider).verify({ rawBody: body, headers: req.headers, url, nowSec: Math.floor(Date.now() / 1000) });
      if (verdict.status !== 'verified') {
        stats.refused += 1;
        if (stats.firstRefusals.length < 5) stats.firstRefusals.push(`${provider} ${url.split('?')[0]}: ${verdict.status === 'rejected' ? verdict.reason : 'no secret to check it with'}`);
        res.writeHead(403, { 'content-type': 'text/plain' }).end('signature');
        return;
      }
      stats.verified += 1;
      const a = app.answer(provider as Provider, body.toString('utf8'), query);
      res.writeHead(200, { 'content-type': a.contentType }).end(a.body);
    });
  });
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const one = (s: string | undefined) => (s ? [s] : []);
  // The app's own view: Twilio signatures are for the app's URL, which is this server's.
  registry = new ProviderRegistry({ freeclimb: one(secrets.freeclimb), jambonz: one(secrets.jambonz), twilio: one(secrets.twilio), restcomm: one(secrets.restcomm) }, base);
  return {
    base,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
};
