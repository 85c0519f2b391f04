import { randomBytes } from 'node:crypto';
import { parse as parseCookie, serialize as serializeCookie } from 'cookie';
import type { FastifyRequest } from 'fastify';
import { LedgerError } from '@lib/ledger';
import { constantTimeEqual } from '@lib/providers';

/**
 * Console sign-in sessions, kept in this process's memory only: a random id in an HttpOnly cookie stands for the
 * API key the engineer signed in with, so scripts in the page never hold the key. A restart signs everyone out,
 * which is acceptable for a support console and keeps keys out of the database.
 */
export interface ConsoleSession {
  id: string;
  /** The API key the session was opened with; the API-key guard checks it as if it came as a Bearer key. */
  key: string;
  /** Echoed in `x-ledger-csrf` on every state-changing request made with the cookie. */
  csrf: string;
  createdAt: number;
  lastSeenAt: number;
}

export interface ConsoleSessionOptions {
  /** A session unused for this long is gone. */
  idleMs: number;
  /** A session older than this is gone, however busy. */
  absoluteMs: number;
  /** Most sessions held at once; the least recently used is dropped past it, so memory stays bounded. */
  max: number;
  now?: () => number;
}

export const SESSION_COOKIE = 'ledger_console';
export const CSRF_HEADER = 'x-ledger-csrf';

export const DEFAULT_SESSION_OPTIONS: ConsoleSessionOptions = { idleMs: 60 * 60_000, absoluteMs: 12 * 60 * 60_000, max: 1000 };

export class ConsoleSessions {
  private readonly sessions = new Map<string, ConsoleSession>();
  private readonly now: () => number;

  constructor(private readonly options: ConsoleSessionOptions = DEFAULT_SESSION_OPTIONS) {
    this.now = options.now ?? Date.now;
  }

  get size(): number {
    return this.sessions.size;
  }

  create(key: string): ConsoleSession {
    const now = this.now();
    const session: ConsoleSession = { id: randomBytes(32).toString('base64url'), key, csrf: randomBytes(24).toString('base64url'), createdAt: now, lastSeenAt: now };
    this.sessions.set(session.id, session);
    // Map order is recency order (touch() re-inserts), so the first entries are the least recently used.
    for (const id of this.sessions.keys()) {
      if (this.sessions.size <= this.options.max) break;
      this.sessions.delete(id);
    }
    return session;
  }

  /** The live session with this id (its idle clock restarts), or null when unknown or expired. */
  touch(id: string): ConsoleSession | null {
    const session = this.sessions.get(id);
    if (!session) return null;
    const now = this.now();
    if (now - session.lastSeenAt > this.options.idleMs || now - session.createdAt > this.options.absoluteMs) {
      this.sessions.delete(id);
      return null;
    }
    session.lastSeenAt = now;
    this.sessions.delete(id);
    this.sessions.set(id, session);
    return session;
  }

  delete(id: string): void {
    this.sessions.delete(id);
  }

  /** Seconds until the session's absolute end: the cookie's Max-Age (the idle limit is kept here, not in the browser). */
  cookieMaxAgeSec(session: ConsoleSession): number {
    return Math.max(0, Math.ceil((session.createdAt + this.options.absoluteMs - this.now()) / 1000));
  }

  /** When the session ends if it is used no more (for the client's own expiry display). */
  expiresAt(session: ConsoleSession): number {
    return Math.min(session.lastSeenAt + this.options.idleMs, session.createdAt + this.options.absoluteMs);
  }
}

const SESSION = Symbol('consoleSession');
type WithSession = FastifyRequest & { [SESSION]?: ConsoleSession };

export const sessionIdFromCookie = (req: FastifyRequest): string | null => {
  const header = req.headers.cookie;
  if (typeof header !== 'string') return null;
  return parseCookie(header)[SESSION_COOKIE] ?? null;
};

/**
 * The API key of the console session this request carries, or null. Set by the console's request hook only
 * after the session and, for a state-changing request, its CSRF token checked out; the API-key guard treats it
 * exactly like a Bearer key (scopes included).
 */
export const sessionKeyFromCookie = (req: FastifyRequest): string | null => (req as WithSession)[SESSION]?.key ?? null;

export const sessionOf = (req: FastifyRequest): ConsoleSession | null => (req as WithSession)[SESSION] ?? null;

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

export const csrfRefused = (message: string) => new LedgerError('AUTH.CSRF', message);

/**
 * Resolves the session cookie of a request that has no Authorization header. A state-changing request must
 * also carry the session's CSRF token in `x-ledger-csrf` (a cross-site page cannot read it nor set the header
 * without a CORS preflight the service never grants) and must not be marked cross-site by the browser.
 * Throws csrfRefused; an unknown or expired session just leaves the request without one (the guard then 401s).
 */
export const attachSession = (sessions: ConsoleSessions, req: FastifyRequest): void => {
  if (req.headers.authorization !== undefined) return;
  const id = sessionIdFromCookie(req);
  if (!id) return;
  const session = sessions.touch(id);
  if (!session) return;
  if (!SAFE_METHODS.has(req.method)) {
    if (req.headers['sec-fetch-site'] === 'cross-site') throw csrfRefused('cross-site request refused');
    const token = req.headers[CSRF_HEADER];
    if (typeof token !== 'string' || !constantTimeEqual(token, session.csrf)) throw csrfRefused(`missing or wrong ${CSRF_HEADER} header for a console session`);
  }
  (req as WithSession)[SESSION] = session;
};

/** Set-Cookie for a new session (Secure when the request came over https, as the proxy settings tell). */
export const sessionCookie = (session: ConsoleSession, secure: boolean, maxAgeSec: number): string =>
  serializeCookie(SESSION_COOKIE, session.id, { httpOnly: true, sameSite: 'strict', secure, path: '/', maxAge: maxAgeSec });

export const clearedSessionCookie = (secure: boolean): string =>
  serializeCookie(SESSION_COOKIE, '', { httpOnly: true, sameSite: 'strict', secure, path: '/', maxAge: 0 });
