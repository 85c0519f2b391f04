import { createHmac } from 'node:crypto';
import { matchesAny } from '../shared/constant-time.js';

export type TwilioParams = ReadonlyArray<readonly [string, string]> | Record<string, string | readonly string[]>;

export type CheckResult = { ok: true } | { ok: false; reason: string };

const groupParams = (params: TwilioParams): Map<string, string[]> => {
  const grouped = new Map<string, string[]>();
  const add = (key: string, value: string): void => {
    const list = grouped.get(key);
    if (list) list.push(value);
    else grouped.set(key, [value]);
  };
  if (Array.isArray(params)) {
    for (const [key, value] of params as ReadonlyArray<readonly [string, string]>) add(key, value);
  } else {
    for (const [key, value] of Object.entries(params as Record<string, string | readonly string[]>)) {
      if (typeof value === 'string') add(key, value);
      else for (const v of value) add(key, v);
    }
  }
  return grouped;
};

/**
 * Base64(HMAC-SHA1(authToken, url + Σ sorted(key) key+value)), docs/providers.md, "Signatures". Repeated keys contribute
 * each distinct value in sorted order, as twilio-node's `getExpectedTwilioSignature` does. Sorting is by
 * UTF-16 code units (JS default), which is what that reference implementation uses too.
 */
export const computeTwilioSignature = (authToken: string, url: string, params: TwilioParams): string => {
  const grouped = groupParams(params);
  let data = url;
  for (const key of [...grouped.keys()].sort()) {
    for (const value of [...new Set(grouped.get(key))].sort()) data += key + value;
  }
  return createHmac('sha1', authToken).update(Buffer.from(data, 'utf8')).digest('base64');
};

const AUTHORITY = /^(https?:\/\/)([^/?#]*@)?(\[[^\]]*\]|[^/?#:]*)(?::(\d*))?(.*)$/is;

/**
 * The URL as configured and its default-port twin: Twilio signs the URL exactly as configured, while a proxy
 * may hand us `:443` added or stripped. twilio-node accepts either spelling; so do we.
 */
export const twilioUrlVariants = (url: string): string[] => {
  const m = AUTHORITY.exec(url);
  if (!m) return [url];
  const [, scheme, userinfo = '', host, port, rest] = m;
  const defaultPort = scheme!.toLowerCase() === 'https://' ? '443' : '80';
  if (port === undefined || port === '') return [url, `${scheme}${userinfo}${host}:${defaultPort}${rest}`];
  if (port === defaultPort) return [url, `${scheme}${userinfo}${host}${rest}`];
  return [url];
};

/**
 * `X-Twilio-Signature` check against every configured token (rotation: old and new are both valid for a while).
 * All candidates are compared, in constant time each, so timing does not reveal which token or URL matched.
 */
export const verifyTwilioSignature = (
  header: string | undefined,
  url: string,
  params: TwilioParams,
  tokens: readonly string[],
): CheckResult => {
  if (tokens.length === 0) return { ok: false, reason: 'no auth token configured' };
  const signature = header?.trim();
  if (!signature) return { ok: false, reason: 'signature missing' };
  const expected: string[] = [];
  for (const variant of twilioUrlVariants(url)) {
    for (const token of tokens) expected.push(computeTwilioSignature(token, variant, params));
  }
  return matchesAny(signature, expected) ? { ok: true } : { ok: false, reason: 'signature does not match' };
};

const basicPassword = (authorizationHeader: string | undefined): string | undefined => {
  const m = /^\s*Basic\s+([A-Za-z0-9+/=_-]+)\s*$/i.exec(authorizationHeader ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  return colon === -1 ? undefined : decoded.slice(colon + 1);
};

/**
 * Restcomm-Connect does not sign webhooks (docs/providers.md, "Signatures"), so the configured callback URL carries a shared secret,
 * either as `?token=` or as the password of `https://user:secret@host/...` (sent as HTTP Basic).
 */
export const verifyRestcommToken = (
  query: URLSearchParams,
  authorizationHeader: string | undefined,
  tokens: readonly string[],
): CheckResult => {
  if (tokens.length === 0) return { ok: false, reason: 'no token configured' };
  const candidates = [query.get('token'), basicPassword(authorizationHeader)].filter(
    (c): c is string => typeof c === 'string' && c !== '',
  );
  if (candidates.length === 0) return { ok: false, reason: 'token missing' };
  let ok = false;
  for (const candidate of candidates) ok = matchesAny(candidate, tokens) || ok;
  return ok ? { ok: true } : { ok: false, reason: 'token does not match' };
};
