const utf8 = new TextDecoder('utf-8', { fatal: true });

export type JsonObjectResult = { ok: true; value: Record<string, unknown> } | { ok: false; reason: string };

/** Strict read of a JSON object body: invalid UTF-8, invalid JSON and non-objects are reasons, not exceptions. */
export const parseJsonObject = (raw: Buffer): JsonObjectResult => {
  if (raw.length === 0) return { ok: false, reason: 'empty body' };
  let text: string;
  try {
    text = utf8.decode(raw);
  } catch {
    return { ok: false, reason: 'body is not valid UTF-8' };
  }
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return { ok: false, reason: `body is not valid JSON: ${(err as Error).message}` };
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    return { ok: false, reason: 'body is JSON but not an object' };
  }
  return { ok: true, value: value as Record<string, unknown> };
};

export const stringField = (obj: Record<string, unknown>, key: string): string | null => {
  const v = obj[key];
  return typeof v === 'string' && v !== '' ? v : null;
};
