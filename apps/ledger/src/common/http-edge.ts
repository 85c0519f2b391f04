import type { IncomingHttpHeaders, IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { LedgerConfig } from '@lib/config';
import { isProvider, signatureInvalid, unavailable, type ErrorCode, type Provider } from '@lib/ledger';
import { STREAMING_ROUTES, TEE_PREFIX, WEBHOOK_PREFIX } from './body-parser.js';
import { errorResponse, toErrorResponse } from './ledger-exception.filter.js';

/**
 * The HTTP edge against slow and unauthenticated clients: Node's timeouts, a connection cap that sheds idle
 * sockets first, a refusal of unsigned webhooks before their body is read, and a budget on the bytes of bodies
 * buffered at once. Everything here runs before routing, so it costs no database work.
 */

/** Options for `http.createServer` and Fastify's own server settings. */
export const serverOptions = (http: LedgerConfig['http']) => ({
  connectionTimeout: http.socketTimeoutMs,
  keepAliveTimeout: http.keepAliveTimeoutMs,
  requestTimeout: http.requestTimeoutMs,
  maxRequestsPerSocket: http.maxRequestsPerSocket,
  http: {
    headersTimeout: http.headersTimeoutMs,
    requestTimeout: http.requestTimeoutMs,
    // Node checks the two timeouts above only this often (30 s by default), which would let a slow client
    // outlive a 10 s header timeout threefold.
    connectionsCheckingInterval: Math.min(1000, Math.max(100, Math.floor(http.headersTimeoutMs / 4))),
  },
});

const rawReply = (socket: Socket, code: ErrorCode, message: string): void => {
  const { status, body } = errorResponse(code, message);
  const text = JSON.stringify(body);
  const reason = { 400: 'Bad Request', 408: 'Request Timeout', 431: 'Request Header Fields Too Large' }[status] ?? 'Error';
  socket.write(
    `HTTP/1.1 ${status} ${reason}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(text)}\r\nConnection: close\r\n\r\n${text}`,
  );
};

/**
 * Node answers a request it cannot parse (too many header bytes: 431, a timeout: 408, malformed: 400) by itself,
 * before Fastify or Nest see it; this writes those answers in the API's error envelope instead.
 */
export const clientErrorHandler = (err: NodeJS.ErrnoException, socket: Socket): void => {
  if (err.code === 'ECONNRESET' || socket.destroyed) return;
  if (socket.writable) {
    if (err.code === 'HPE_HEADER_OVERFLOW') {
      rawReply(socket, 'REQUEST.HEADERS_TOO_LARGE', 'the request headers exceed the size the server accepts');
    } else if (err.code === 'ERR_HTTP_REQUEST_TIMEOUT') {
      rawReply(socket, 'REQUEST.TIMEOUT', 'the request did not arrive in time');
    } else {
      rawReply(socket, 'REQUEST.MALFORMED', 'the request is not valid HTTP');
    }
  }
  socket.destroy();
};

/** How long a connection may sit without a request once the server closes (see `guardConnections`). */
export const DRAIN_IDLE_GRACE_MS = 1000;

/**
 * Caps open connections. When a new one would pass the cap, the oldest connection that has no request in
 * progress (half-sent headers, or idle between keep-alive requests) is closed to make room, so that a flood of
 * idle sockets cannot lock out /health or a provider; only when every connection is serving a request is the
 * new one refused. (`server.maxConnections` would refuse the newcomer and keep the idle sockets.)
 *
 * Also makes the close graceful: Node's `server.close()` destroys every connection without a request in
 * progress at once, including one just accepted whose request is already in its buffer but not parsed yet, so
 * that client sees a reset for a request it sent. Here a connection is closed only once it has been idle for
 * DRAIN_IDLE_GRACE_MS; requests that arrive meanwhile are served (with `Connection: close`, by Fastify).
 */
export const guardConnections = (
  server: Server,
  max: number,
  on: { shed?: (kind: 'evicted' | 'refused') => void; aborted?: (req: IncomingMessage) => void } = {},
): void => {
  // Map order is age order: the first idle entry is the oldest idle socket.
  const open = new Map<Socket, { busy: number; idleSince: number }>();
  server.on('connection', (socket: Socket) => {
    if (open.size >= max) {
      let victim: Socket | null = null;
      for (const [s, state] of open) {
        if (state.busy === 0) {
          victim = s;
          break;
        }
      }
      if (victim) {
        open.delete(victim);
        victim.destroy();
        on.shed?.('evicted');
      } else {
        socket.destroy();
        on.shed?.('refused');
        return;
      }
    }
    open.set(socket, { busy: 0, idleSince: Date.now() });
    socket.once('close', () => open.delete(socket));
  });
  server.on('request', (req: IncomingMessage, res: ServerResponse) => {
    const state = open.get(req.socket);
    if (!state) return;
    state.busy += 1;
    res.once('close', () => {
      // A request whose connection closed before its answer was sent (the client left, or the server dropped it).
      if (!res.writableFinished) on.aborted?.(req);
      state.busy -= 1;
      if (state.busy === 0) state.idleSince = Date.now();
    });
  });
  // Node calls this from server.close(); sweep until every connection is gone.
  server.closeIdleConnections = () => {
    const now = Date.now();
    for (const [socket, state] of open) {
      if (state.busy === 0 && now - state.idleSince >= DRAIN_IDLE_GRACE_MS) socket.destroy();
    }
    if (open.size > 0) setTimeout(() => server.closeIdleConnections(), 100).unref();
  };
};

/** Whether a delivery carries the credential its provider uses at all (the guard then checks its value). */
export const carriesCredential = (provider: Provider, headers: IncomingHttpHeaders, url: string): boolean => {
  switch (provider) {
    case 'freeclimb':
      return headers['freeclimb-signature'] !== undefined;
    case 'jambonz':
      return headers['jambonz-signature'] !== undefined;
    case 'twilio':
      return headers['x-twilio-signature'] !== undefined;
    case 'restcomm': {
      const q = url.indexOf('?');
      return (q >= 0 && new URLSearchParams(url.slice(q + 1)).has('token')) || /^\s*basic\s/i.test(headers.authorization ?? '');
    }
  }
};

const providerOf = (url: string): string | null => {
  const prefix = url.startsWith(WEBHOOK_PREFIX) ? WEBHOOK_PREFIX : url.startsWith(TEE_PREFIX) ? TEE_PREFIX : null;
  if (prefix === null) return null;
  const rest = url.slice(prefix.length);
  const end = rest.search(/[/?]/);
  return end < 0 ? rest : rest.slice(0, end);
};

const sendError = (reply: FastifyReply, err: unknown, close: boolean): void => {
  const { status, body, headers } = toErrorResponse(err);
  if (close) reply.header('connection', 'close');
  void reply.status(status).headers(headers).send(body);
};

export interface EdgeHooksOptions {
  config: LedgerConfig;
  /** Told about each webhook refused here for lack of a credential, so that it is counted and logged. */
  onUnsigned?: (provider: Provider, req: FastifyRequest) => void;
}

/** Bytes of request bodies being buffered right now, across every request. */
export class BodyBudget {
  private used = 0;
  constructor(readonly capacity: number) {}

  get inUse(): number {
    return this.used;
  }

  /** Reserves `bytes`, or returns null when the budget cannot hold them; the release is idempotent. */
  take(bytes: number): (() => void) | null {
    if (this.used + bytes > this.capacity) return null;
    this.used += bytes;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.used -= bytes;
    };
  }
}

export const registerEdgeHooks = (fastify: FastifyInstance, options: EdgeHooksOptions): BodyBudget => {
  const { config } = options;
  const budget = new BodyBudget(config.http.maxBodyBytesInFlight);

  // An unsigned delivery for a provider whose secret is configured can only be refused: answer before its
  // body is read, and close the connection so that the body is never buffered either.
  fastify.addHook('onRequest', (req, reply, done) => {
    if (req.method !== 'POST') return done();
    const provider = providerOf(req.url);
    if (provider === null || !isProvider(provider) || config.secrets[provider].length === 0) return done();
    if (carriesCredential(provider, req.headers, req.url)) return done();
    options.onUnsigned?.(provider, req);
    sendError(reply, signatureInvalid(provider === 'restcomm' ? 'no token (query or Basic password)' : 'no signature header'), true);
  });

  // Memory for buffered bodies is bounded as a whole, not only per request: the declared length (or, for a
  // chunked body, the largest allowed) is reserved before reading, and released when the answer is done.
  fastify.addHook('preParsing', (req, reply, payload, done) => {
    const path = req.url.split('?', 1)[0]!;
    if (STREAMING_ROUTES.has(path)) return done(null, payload);
    const declared = Number(req.headers['content-length']);
    const chunked = req.headers['transfer-encoding'] !== undefined;
    if (!chunked && !(declared > 0)) return done(null, payload);
    // Over the per-request limit: the body parser answers 413 without buffering, so nothing to reserve.
    if (!chunked && declared > config.maxBodyBytes) return done(null, payload);
    const release = budget.take(chunked ? config.maxBodyBytes : declared);
    if (!release) {
      reply.header('connection', 'close');
      return done(unavailable('too many request bodies in flight; retry shortly'), undefined);
    }
    reply.raw.once('close', release);
    done(null, payload);
  });
  return budget;
};
