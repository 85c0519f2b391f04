/**
 * Deterministic JSON: keys sorted at every level, `undefined` dropped, NUL characters replaced (jsonb cannot
 * hold U+0000). Hashes are computed over this text, and the same text is what is stored, so a hash recomputed
 * from the jsonb column matches whatever key order PostgreSQL chose.
 */
export const canonicalJson = (value: unknown): string => JSON.stringify(normalise(value));

/**
 * NUL and lone UTF-16 surrogates become U+FFFD: jsonb refuses both (`\u0000`, "Unicode low surrogate must follow
 * a high surrogate"). A lone surrogate reaches event data from a provider body (`"\ud800"` in JSON) or from a
 * parser's error message that quotes half a character (the hostile-input fuzz test found the second).
 */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
/** Almost every string has neither: one scan without lookarounds answers that, before the two replacements. */
// eslint-disable-next-line no-control-regex -- NUL is exactly what is looked for (text refuses it)
const NEEDS_REPLACING = /[\u0000\uD800-\uDFFF]/;
const storable = (s: string): string =>
  NEEDS_REPLACING.test(s) ? s.replaceAll('\u0000', '\uFFFD').replace(LONE_SURROGATE, '\uFFFD') : s;

/**
 * A text column as PostgreSQL will hold it, for every text that is hashed (stream names, path, query...):
 * node-postgres encodes a lone surrogate as U+FFFD (UTF-8 has no form for it), so hashing the string as
 * received would hash something that is never stored; and `text` refuses NUL outright. Both become U+FFFD
 * before the value is stored and hashed (`storage-facts.int-spec.ts` checks both facts on the real server).
 */
export const storableText = storable;

const normalise = (value: unknown): unknown => {
  if (value === null) return null;
  if (typeof value === 'string') return storable(value);
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value !== 'object') return value;
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : normalise(v)));
  const out: Record<string, unknown> = {};
  for (const key of sortedKeys(value)) {
    const v = (value as Record<string, unknown>)[key];
    if (v === undefined) continue;
    const k = storable(key);
    // `out.__proto__ = v` would set the prototype (and JSON.stringify drop the key); JSON.parse makes it an own key.
    if (k === '__proto__') Object.defineProperty(out, k, { value: normalise(v), enumerable: true, writable: true, configurable: true });
    else out[k] = normalise(v);
  }
  return out;
};

/**
 * Object.keys(value).sort(), sorted in place by insertion: the same order (keys are distinct strings, compared by
 * UTF-16 code units as the default sort does), without the work arrays Array.prototype.sort allocates per call,
 * which were a tenth of the bytes the ingest path allocated per delivery (a few keys per object, many objects).
 */
export const sortedKeys = (value: object): string[] => {
  const keys = Object.keys(value);
  for (let i = 1; i < keys.length; i += 1) {
    const key = keys[i]!;
    let j = i - 1;
    while (j >= 0 && keys[j]! > key) {
      keys[j + 1] = keys[j]!;
      j -= 1;
    }
    keys[j + 1] = key;
  }
  return keys;
};
