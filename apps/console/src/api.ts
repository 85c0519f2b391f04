/**
 * The console's API client. Types come from the server's own zod schemas (type-only imports, erased by the
 * build), so a field the API drops or renames breaks `npm run typecheck` instead of the page.
 */
import type { z } from 'zod';
import type { callEventsSchema, callPageSchema, CallEventDto, CallLegDto, CallTreeDto } from '../../ledger/src/calls/calls.dto.js';
import type { summarySchema, timeseriesSchema, kpisSchema } from '../../ledger/src/analytics/analytics.dto.js';
import type { auditReportSchema } from '../../ledger/src/audit/audit.controller.js';
import type { RejectionEntry } from '../../ledger/src/webhooks/rejection-log.js';
import type { ProjectionStatus } from '../../../libs/projections/src/index.js';

export type { CallEventDto, CallLegDto, CallTreeDto, ProjectionStatus, RejectionEntry };
export type CallPage = z.output<typeof callPageSchema>;
export type CallEvents = z.output<typeof callEventsSchema>;
export type Summary = z.output<typeof summarySchema>;
export type Timeseries = z.output<typeof timeseriesSchema>;
export type Kpis = z.output<typeof kpisSchema>;
export type AuditReport = z.output<typeof auditReportSchema>;

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/** The CSRF token of the current session, held in memory only (the session id itself is an HttpOnly cookie). */
let csrfToken: string | null = null;
const expiredListeners = new Set<() => void>();

export const onSessionExpired = (fn: () => void): (() => void) => {
  expiredListeners.add(fn);
  return () => expiredListeners.delete(fn);
};

const request = async <T>(method: string, url: string, body?: unknown): Promise<T> => {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (method !== 'GET' && csrfToken) headers['x-ledger-csrf'] = csrfToken;
  const res = await fetch(url, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  if (res.status === 204) return undefined as T;
  const text = await res.text();
  const json = text ? (JSON.parse(text) as unknown) : undefined;
  if (!res.ok) {
    const err = (json as { error?: { code?: string; message?: string } } | undefined)?.error;
    if (res.status === 401 && !url.startsWith('/console/api/session')) {
      csrfToken = null;
      for (const fn of expiredListeners) fn();
    }
    throw new ApiError(res.status, err?.code ?? `HTTP.${res.status}`, err?.message ?? res.statusText);
  }
  return json as T;
};

export const get = <T>(url: string) => request<T>('GET', url);

/** A text answer (the Prometheus /metrics page). */
export const getText = async (url: string): Promise<string> => {
  const res = await fetch(url, { credentials: 'same-origin' });
  if (res.status === 401) {
    csrfToken = null;
    for (const fn of expiredListeners) fn();
  }
  if (!res.ok) throw new ApiError(res.status, `HTTP.${res.status}`, res.statusText);
  return res.text();
};
export const post = <T>(url: string, body: unknown) => request<T>('POST', url, body);

export interface SessionInfo {
  csrfToken: string;
  expiresAt: string;
}

export const session = {
  async current(): Promise<SessionInfo | null> {
    try {
      const s = await get<SessionInfo>('/console/api/session');
      csrfToken = s.csrfToken;
      return s;
    } catch (err) {
      if (err instanceof ApiError && err.status === 401) return null;
      throw err;
    }
  },
  async signIn(apiKey: string): Promise<SessionInfo> {
    const s = await post<SessionInfo>('/console/api/session', { apiKey });
    csrfToken = s.csrfToken;
    return s;
  },
  async signOut(): Promise<void> {
    await request<{ signedOut: true }>('DELETE', '/console/api/session');
    csrfToken = null;
  },
};

export const qs = (params: Record<string, string | number | boolean | undefined | null>): string => {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') u.set(k, String(v));
  const s = u.toString();
  return s ? `?${s}` : '';
};
