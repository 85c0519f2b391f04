import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Constant-time string equality. Strings are compared as UTF-16 code units (`utf16le`), which is lossless:
 * UTF-8 would turn every lone surrogate into U+FFFD, so '\uD800' and '\uDC00' would compare equal. Equal lengths
 * compare directly; different lengths compare sha256 digests, so that timingSafeEqual never sees buffers of
 * different sizes and the time does not depend on where the inputs differ.
 */
export const constantTimeEqual = (a: string, b: string): boolean => {
  const ba = Buffer.from(a, 'utf16le');
  const bb = Buffer.from(b, 'utf16le');
  if (ba.length === bb.length) return timingSafeEqual(ba, bb);
  const ha = createHash('sha256').update(ba).digest();
  const hb = createHash('sha256').update(bb).digest();
  return timingSafeEqual(ha, hb) && false;
};

/** True when `candidate` equals any of `secrets`, checking every one so that the time does not say which. */
export const matchesAny = (candidate: string, secrets: readonly string[]): boolean => {
  let found = false;
  for (const secret of secrets) found = constantTimeEqual(candidate, secret) || found;
  return found;
};
