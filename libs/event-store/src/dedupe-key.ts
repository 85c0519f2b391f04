import { createHash } from 'node:crypto';

/** Providers whose bodies are form-encoded and signed (Twilio) or carried (Restcomm) as a parameter list. */
const FORM_PROVIDERS = new Set(['twilio', 'restcomm']);

/**
 * The key that decides "same delivery". A JSON provider signs the exact bytes, so the key is their sha256.
 * A form provider's signature covers the parameter list, not the bytes: X-Twilio-Signature is computed over
 * the keys sorted, each distinct value sorted, concatenated key+value. Every body that yields the same string
 * passes the same signature, so a captured delivery can be resent reordered, with a trailing `&`, with a pair
 * repeated, or with a value merged into the next key (`A=1&B=2` and `A=1B2` both sign "A1B2") as a new verified
 * receipt. Keying on that same string makes every such variant a duplicate of the first: the ledger keeps
 * nothing the signature cannot tell apart. A repeated pair is therefore the same delivery (the signature
 * counts each distinct value once); two different values of one key are not. The body's own bytes and sha256
 * are still stored and chained as received.
 */
export const dedupeKeyFor = (provider: string, body: Buffer, bodySha256: Buffer, query = ''): Buffer => {
  if (!FORM_PROVIDERS.has(provider)) return bodySha256;
  // A GET delivery has no body: its parameters, and what its signature covers (the whole URL), are the query.
  // Keyed on the body, every GET would be a duplicate of the first one.
  if (body.length === 0 && query !== '') return createHash('sha256').update('query\u0000').update(canonicalFormString(Buffer.from(query, 'utf8')), 'utf8').digest();
  return createHash('sha256').update('form\u0000').update(canonicalFormString(body), 'utf8').digest();
};

/** The string X-Twilio-Signature signs after the URL (rcml adapter: `URLSearchParams` over the UTF-8 text). */
export const canonicalFormString = (body: Buffer): string => {
  const grouped = new Map<string, Set<string>>();
  for (const [k, v] of new URLSearchParams(body.toString('utf8'))) {
    const values = grouped.get(k);
    if (values) values.add(v);
    else grouped.set(k, new Set([v]));
  }
  let data = '';
  for (const key of [...grouped.keys()].sort()) for (const value of [...grouped.get(key)!].sort()) data += key + value;
  return data;
};
