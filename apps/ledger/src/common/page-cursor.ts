import { createHmac, timingSafeEqual } from 'node:crypto';
import { badRequest } from '@lib/ledger';

/**
 * Keyset cursors: the sort key of the last row, bound to the route and the exact filter set by a MAC. The MAC
 * key is not secret (a forged cursor can only move the start of a keyset scan whose filters the server applies
 * anyway); it makes cursors self-validating across instances and restarts, so that an edited cursor, garbage,
 * or a cursor from another filter set or route is a 400 instead of a silently wrong page.
 */
const MAC_KEY = 'call-ledger/page-cursor/v1';

export type CursorKey = (string | null)[];

const canonicalFilters = (filters: Record<string, unknown>): string =>
  JSON.stringify(
    Object.keys(filters)
      .filter((k) => filters[k] !== undefined)
      .sort()
      .map((k) => [k, filters[k] instanceof Date ? (filters[k] as Date).toISOString() : filters[k]]),
  );

const mac = (scope: string, filters: Record<string, unknown>, payload: string): Buffer =>
  createHmac('sha256', MAC_KEY).update(`${scope}\u0000${canonicalFilters(filters)}\u0000${payload}`).digest().subarray(0, 16);

export const encodeCursor = (scope: string, filters: Record<string, unknown>, key: CursorKey): string => {
  const payload = Buffer.from(JSON.stringify([1, ...key])).toString('base64url');
  return `${payload}.${mac(scope, filters, payload).toString('base64url')}`;
};

const invalid = (why: string) => badRequest('QUERY.INVALID_CURSOR', `invalid query parameter "cursor": ${why}`);

/** The key encoded by `encodeCursor` for the same scope and filters; anything else throws a 400 naming `cursor`. */
export const decodeCursor = (scope: string, filters: Record<string, unknown>, cursor: string, keyLength: number): CursorKey => {
  const [payload, tag, extra] = cursor.split('.');
  if (!payload || !tag || extra !== undefined || !/^[A-Za-z0-9_-]+$/.test(payload + tag)) throw invalid('not a cursor issued by this API');
  const expected = mac(scope, filters, payload);
  const given = Buffer.from(tag, 'base64url');
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
    throw invalid('it was issued for another route or other filters, or it was altered; start again without cursor');
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8'));
  } catch {
    throw invalid('not a cursor issued by this API');
  }
  if (!Array.isArray(parsed) || parsed[0] !== 1 || parsed.length !== keyLength + 1 || !parsed.slice(1).every((v) => v === null || typeof v === 'string')) {
    throw invalid('not a cursor issued by this API');
  }
  return parsed.slice(1) as CursorKey;
};
