import { createHmac } from 'node:crypto';
import { constantTimeEqual } from './constant-time.js';

export const SIGNATURE_TOLERANCE_SEC = 300;

export type TimestampedHmacResult = { ok: true; timestamp: Date } | { ok: false; reason: string };

/**
 * `t=<unix seconds>,v1=<hex>[,v1=<hex>...]` over `${t}.${rawBody}` with HMAC-SHA256, the scheme FreeClimb
 * (FreeClimb-Signature) and jambonz (Jambonz-Signature) share (docs/providers.md, "Signatures"). We check the window
 * both ways (|now - t| <= 300 s): FreeClimb's SDK compares milliseconds to seconds and only rejects old ones.
 */
export const verifyTimestampedHmac = (
  header: string | undefined,
  rawBody: Buffer,
  secrets: readonly string[],
  nowSec: number,
  toleranceSec = SIGNATURE_TOLERANCE_SEC,
): TimestampedHmacResult => {
  if (!header) return { ok: false, reason: 'signature header missing' };
  let t: string | undefined;
  const v1: string[] = [];
  for (const part of header.split(',')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const key = part.slice(0, eq).trim();
    const value = part.slice(eq + 1).trim();
    if (key === 't') t = value;
    else if (key === 'v1') v1.push(value.toLowerCase());
  }
  if (!t || !/^\d{1,12}$/.test(t)) return { ok: false, reason: 'signature timestamp missing or malformed' };
  if (v1.length === 0) return { ok: false, reason: 'signature has no v1 value' };
  const tSec = Number(t);
  if (Math.abs(nowSec - tSec) > toleranceSec) {
    return { ok: false, reason: `signature timestamp outside the ±${toleranceSec} s window` };
  }
  let matched = false;
  for (const secret of secrets) {
    const expected = computeTimestampedHmac(secret, t, rawBody);
    for (const candidate of v1) matched = constantTimeEqual(expected, candidate) || matched;
  }
  return matched ? { ok: true, timestamp: new Date(tSec * 1000) } : { ok: false, reason: 'signature does not match' };
};

export const computeTimestampedHmac = (secret: string, t: string | number, rawBody: Buffer): string =>
  createHmac('sha256', secret).update(`${t}.`).update(rawBody).digest('hex');

/** Builds a header the way the providers do; used by the simulator and tests. */
export const signTimestampedHmac = (secrets: readonly string[], tSec: number, rawBody: Buffer): string =>
  [`t=${tSec}`, ...secrets.map((s) => `v1=${computeTimestampedHmac(s, tSec, rawBody)}`)].join(',');
