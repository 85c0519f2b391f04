import { Inject, Injectable, type OnApplicationShutdown } from '@nestjs/common';
import { Agent, request } from 'undici';
import { LEDGER_CONFIG, type LedgerConfig } from '@lib/config';

/** RFC 9110 §7.6.1: meaningful for one connection only, never forwarded; plus what undici sets itself. */
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
 * Calls the app for a tee delivery over a bounded undici pool: connections per app, the whole exchange within
 * LEDGER_TEE_TIMEOUT_MS, at most LEDGER_TEE_MAX_ANSWER_BYTES read. Never throws: a failure is a result the
 * ledger records and answers as the provider would have seen it.
 */
@Injectable()
export class AppForwarder implements OnApplicationShutdown {
  private readonly agent: Agent;

  constructor(@Inject(LEDGER_CONFIG) private readonly config: LedgerConfig) {
    const t = config.tee;
    this.agent = new Agent({ connections: t.connections, headersTimeout: t.timeoutMs, bodyTimeout: t.timeoutMs, connect: { timeout: Math.min(t.timeoutMs, 5_000) }, maxRedirections: 0 } as Agent.Options);
  }

  async forward(req: ForwardRequest): Promise<ForwardResult> {
    const started = performance.now();
    const { timeoutMs, maxAnswerBytes } = this.config.tee;
    const controller = new AbortController();
    const timer = setTimeout(() => controller.abort(new Error('timeout')), timeoutMs);
    const failed = (outcome: 'timeout' | 'unreachable' | 'too-large', error: string): ForwardResult => ({
      outcome,
      status: null,
      headers: {},
      body: Buffer.alloc(0),
      durationMs: performance.now() - started,
      error,
    });
    try {
      const res = await request(req.url, {
        dispatcher: this.agent,
        method: req.method as 'POST',
        headers: forwardableHeaders(req.headers),
        body: req.method === 'GET' || req.method === 'HEAD' ? undefined : req.body,
        signal: controller.signal,
      });
      const declared = Number(res.headers['content-length']);
      if (Number.isFinite(declared) && declared > maxAnswerBytes) {
        res.body.destroy();
        return failed('too-large', `the app's answer declares ${declared} bytes; at most ${maxAnswerBytes} are read`);
      }
      const chunks: Buffer[] = [];
      let size = 0;
      for await (const chunk of res.body) {
        size += (chunk as Buffer).length;
        if (size > maxAnswerBytes) {
          res.body.destroy();
          return failed('too-large', `the app's answer exceeds ${maxAnswerBytes} bytes`);
        }
        chunks.push(chunk as Buffer);
      }
      const headers: Record<string, string> = {};
      for (const name of ANSWER_HEADER_ALLOWLIST) {
        const v = res.headers[name];
        if (v !== undefined) headers[name] = Array.isArray(v) ? v.join(', ') : v;
      }
      return { outcome: 'answered', status: res.statusCode, headers, body: Buffer.concat(chunks, size), durationMs: performance.now() - started };
    } catch (err) {
      const e = err as Error & { code?: string };
      if (controller.signal.aborted || e.code === 'UND_ERR_HEADERS_TIMEOUT' || e.code === 'UND_ERR_BODY_TIMEOUT' || e.code === 'UND_ERR_CONNECT_TIMEOUT') {
        return failed('timeout', `the app did not answer within ${timeoutMs} ms`);
      }
      return failed('unreachable', `the app could not be reached: ${e.code ?? e.message}`);
    } finally {
      clearTimeout(timer);
    }
  }

  async onApplicationShutdown(): Promise<void> {
    await this.agent.close().catch(() => undefined);
  }
}
