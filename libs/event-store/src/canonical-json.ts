/**
 * Deterministic JSON: keys sorted at every level, `undefined` dropped, NUL characters replaced (jsonb cannot
 * hold U+0000). Hashes are computed over this text, and the same text is what is stored, so a hash recomputed
 * from the jsonb column matches whatever key order PostgreSQL chose.
 */
export const canonicalJson = (value: unknown): string => JSON.stringify(normalise(value));

const normalise = (value: unknown): unknown => {
  if (value === null) return null;
  if (typeof value === 'string') return value.includes('\u0000') ? value.replaceAll('\u0000', '\uFFFD') : value;
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value !== 'object') return value;
  if (value instanceof Date) return value.toISOString();
  if (Array.isArray(value)) return value.map((v) => (v === undefined ? null : normalise(v)));
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value).sort()) {
    const v = (value as Record<string, unknown>)[key];
    if (v !== undefined) out[key.includes('\u0000') ? key.replaceAll('\u0000', '\uFFFD') : key] = normalise(v);
  }
  return out;
};
