/**
 * PostgreSQL array literals for the array parameters of `ledger_append` (`$n::text[]`, `::bytea[]`, `::int[]`...),
 * the text node-postgres would send for a JS array, built in one pass. The driver's own encoder runs two regular
 * expression replacements and a type dispatch per element; `ledger_append` takes 23 arrays, and its JSON texts
 * (data, metadata, chain content, headers) are full of quotes, so on the live path that encoder was about a
 * sixth of the service's CPU per delivery in `appendBatch` (bench/peer.bench.ts profile, bench/profile-notes.md).
 * The element grammar is the driver's: quoted, `\` and `"` escaped, NULL unquoted.
 */
const QUOTE_OR_BACKSLASH = /["\\]/g;

/** Texts (and anything PostgreSQL parses from text: uuid, timestamptz as ISO strings...), null as NULL. */
export const textArrayLiteral = (values: readonly (string | null | undefined)[]): string => {
  let out = '{';
  for (let i = 0; i < values.length; i += 1) {
    const v = values[i];
    if (i > 0) out += ',';
    out += v == null ? 'NULL' : `"${v.replace(QUOTE_OR_BACKSLASH, '\\$&')}"`;
  }
  return `${out}}`;
};

/** Byte strings in bytea's hex form (`\x…`, its backslash escaped for the array parser). */
export const byteaArrayLiteral = (values: readonly (Buffer | null | undefined)[]): string => {
  let out = '{';
  for (let i = 0; i < values.length; i += 1) {
    const v = values[i];
    if (i > 0) out += ',';
    out += v == null ? 'NULL' : `\\\\x${v.toString('hex')}`;
  }
  return `${out}}`;
};

/** Integers. */
export const intArrayLiteral = (values: readonly number[]): string => `{${values.join(',')}}`;
