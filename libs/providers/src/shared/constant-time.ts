import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Constant-time string equality. Both sides are hashed first so that the comparison takes the same time
 * whatever the lengths, and timingSafeEqual never sees buffers of different sizes.
 */
export const constantTimeEqual = (a: string, b: string): boolean => {
  // Equal lengths (the usual case for digests) compare directly; only mismatched lengths pay for hashing.
  if (a.length === b.length) {
    const ba = Buffer.from(a, 'utf8');
    const bb = Buffer.from(b, 'utf8');
    if (ba.length === bb.length) return timingSafeEqual(ba, bb);
  }
  const ha = createHash('sha256').update(a, 'utf8').digest();
  const hb = createHash('sha256').update(b, 'utf8').digest();
  return timingSafeEqual(ha, hb) && a.length === b.length;
};

/** True when `candidate` equals any of `secrets`, checking every one so that the time does not say which. */
export const matchesAny = (candidate: string, secrets: readonly string[]): boolean => {
  let found = false;
  for (const secret of secrets) found = constantTimeEqual(candidate, secret) || found;
  return found;
};
