import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { LEDGER_CONFIG, type LedgerConfig } from '@lib/config';

/** RFC 9110 §7.6.1: meaningful for one connection only, never forwarded; plus what the client sets itself. */
const HOP_BY_HOP = new Set(['connection', 'keep-alive', 'proxy-connection', 'proxy-authenticate', 'proxy-authorization', 'te', 'trailer', 'transfer-encoding', 'upgrade', 'host', 'content-length', 'expect']);

/** Answer headers returned to the provider and kept with the answer (what a platform reads of an answer). */
export const ANSWER_HEADER_ALLOWLIST = ['content-type', 'location', 'retry-after', 'cache-control'] as const;

export interface ForwardRequest {
  /** Absolute URL of the app, built from configuration only. */
  url: string;
  method: string;
  headers: Record<string, string | string[] | undefined>;
  body: Buffer;
}

export type ForwardResult =
  | { outcome: 'answered'; status: number; headers: Record<string, string>; body: Buffer; durationMs: number }
  /** The app did not answer in time, could not be reached, or answered more than the ledger reads. */
  | { outcome: 'timeout' | 'unreachable' | 'too-large'; status: null; headers: Record<string, string>; body: Buffer; durationMs: number; error: string };

/**
 * The app URL a tee delivery goes to: the configured base, the sub-path and the query as received. Only the
 * configured origin is ever called; a sub-path with dot segments (plain or percent-encoded) that would climb
 * out of the base is refused (null), so the route is no open proxy.
 */
export const teeTargetUrl = (base: string, subPath: string, rawQuery: string): string | null => {
  if (subPath.split('/').some((seg) => /^(\.|%2e){1,2}$/i.test(seg))) return null;
  const url = `${base}${subPath ? `/${subPath}` : ''}${rawQuery ? `?${rawQuery}` : ''}`;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return null;
  }
  const root = new URL(base);
  const rootPath = root.pathname.replace(/\/$/, '');
  if (parsed.origin !== root.origin || (parsed.pathname !== rootPath && !parsed.pathname.startsWith(`${rootPath}/`))) return null;
  return url;
};

export const forwardableHeaders = (headers: Record<string, string | string[] | undefined>): Record<string, string> => {
  const named = new Set(HOP_BY_HOP);
  // Headers listed in Connection are hop-by-hop too.
  for (const n of String(headers.connection ?? '').split(',')) if (n.trim()) named.add(n.trim().toLowerCase());
  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(headers)) {
    if (value === undefined || named.has(name.toLowerCase())) continue;
    out[name] = Array.isArray(value) ? value.join(', ') : value;
  }
  return out;
};

/**
 * Calls the app for a tee delivery over bounded keep-alive pools (node:http and node:https, connections per app),
 * the whole exchange within LEDGER_TEE_TIMEOUT_MS, at most LEDGER_TEE_MAX_ANSWER_BYTES read. Never throws: a
 * failure is a result the ledger records and answers as the provider would have seen it.
 *
 * Not undici: from 7.30 it writes a request on a reused idle keep-alive connection one `setImmediate` later
 * (GHSA-35p6-xmwp-9g52), i.e. after every I/O callback the event loop has ready, and the tee reuses one such
 * connection for nearly every delivery. On a busy service that turn of the loop came on top of every forward;
 * node:http writes the request in the same turn. What the app answers on an idle connection before it is
 * asked cannot be taken for an answer here: a response is only read for the request written on that socket.
 */
@Injectable()
export class AppForwarder implements OnApplicationShutdown {
  private readonly http: HttpAgent;
  private readonly https: HttpsAgent;

  constructor(@Inject(LEDGER_CONFIG) private readonly config: LedgerConfig) {
    const pool = { keepAlive: true, maxSockets: config.tee.connections };
    this.http = new HttpAgent(pool);
    this.https = new HttpsAgent(pool);
  }

  forward(req: ForwardRequest): Promise<ForwardResult> {
    const started = performance.now();
    const { timeoutMs, maxAnswerBytes } = this.config.tee;
    const failed = (outcome: 'timeout' | 'unreachable' | 'too-large', error: string): ForwardResult => ({
      outcome,
      status: null,
      headers: {},
      body: Buffer.alloc(0),
      durationMs: performance.now() - started,
      error,
    });
    return new Promise<ForwardResult>((resolve) => {
      let settled = false;
      const settle = (result: ForwardResult) => {
        if (settled) return;
        settled = true;
        clearTimeout(timer);
        resolve(result);
      };
      const timer = setTimeout(() => {
        settle(failed('timeout', `the app did not answer within ${timeoutMs} ms`));
        out.destroy();
      }, timeoutMs);
      const url = new URL(req.url);
      const secure = url.protocol === 'https:';
      const body = req.method === 'GET' || req.method === 'HEAD' ? null : req.body;
      const headers = forwardableHeaders(req.headers);
      if (body) headers['content-length'] = String(body.length);
      const out = (secure ? httpsRequest : httpRequest)(url, { method: req.method, headers, agent: secure ? this.https : this.http }, (res) => {
        const tooLarge = (error: string) => {
          settle(failed('too-large', error));
          out.destroy();
        };
        const declared = Number(res.headers['content-length']);
        if (Number.isFinite(declared) && declared > maxAnswerBytes) return tooLarge(`the app's answer declares ${declared} bytes; at most ${maxAnswerBytes} are read`);
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > maxAnswerBytes) return tooLarge(`the app's answer exceeds ${maxAnswerBytes} bytes`);
          chunks.push(chunk);
        });
        res.on('error', (err: Error & { code?: string }) => settle(failed('unreachable', `the app could not be reached: ${err.code ?? err.message}`)));
        res.on('end', () => {
          const kept: Record<string, string> = {};
          for (const name of ANSWER_HEADER_ALLOWLIST) {
            const v = res.headers[name];
            if (v !== undefined) kept[name] = Array.isArray(v) ? v.join(', ') : v;
          }
          settle({ outcome: 'answered', status: res.statusCode!, headers: kept, body: Buffer.concat(chunks, size), durationMs: performance.now() - started });
        });
      });
      out.on('error', (err: Error & { code?: string }) => settle(failed('unreachable', `the app could not be reached: ${err.code ?? err.message}`)));
      out.end(body ?? undefined);
    });
  }

  onApplicationShutdown(): void {
    this.http.destroy();
    this.https.destroy();
  }
}
