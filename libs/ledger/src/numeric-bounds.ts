import { z } from 'zod';
import type { CallEventType, TranslatedEvent } from './call-leg.events.js';

/**
 * Bounds of every number the neutral events carry. A provider (or an import line, or an unverified sender) can
 * put anything in a number field: a fraction where an integer belongs, a negative duration, "99999999999999999999".
 * Such a value stays in the raw body (the evidence), is taken out of the event's data and listed in
 * `data.invalidFields`, and the leg reports it (`invalidFields`) instead of projecting it: a value the read model
 * cannot hold (sip_status integer, rollups in bigint milliseconds) used to stop the projection for good.
 *
 * The bounds are generous on purpose: they exist to keep the read model sound, not to judge the provider.
 */
/** 31 days: far longer than any provider lets a call last, and ×1000 ×legs still far inside bigint. */
export const MAX_DURATION_SEC = 31 * 24 * 3600;
const duration = z.number().min(0, 'negative').max(MAX_DURATION_SEC, `above ${MAX_DURATION_SEC} s`);
/** SIP final and provisional responses (RFC 3261 §21): 100–699. */
const sipStatus = z.number().int('not an integer').min(100, 'below 100').max(699, 'above 699');
const count = z.number().int('not an integer').min(0, 'negative').max(1_000_000, 'above 1000000');
/** 0–1 (jambonz, Twilio) or 0–100 (FreeClimb). */
const confidence = z.number().min(0, 'negative').max(100, 'above 100');
const providerSeq = z.number().int('not an integer').min(0, 'negative').max(Number.MAX_SAFE_INTEGER, 'above 2^53 - 1');

export const NUMERIC_FIELDS: { readonly [K in CallEventType]?: Readonly<Record<string, z.ZodNumber>> } = {
  CallRinging: { sipStatus },
  CallAnswered: { sipStatus },
  CallCompleted: { durationSec: duration, sipStatus },
  DialCompleted: { durationSec: duration, ringDurationSec: duration, sipStatus },
  RecordingAvailable: { durationSec: duration },
  ConferenceJoined: { members: count },
  ConferenceLeft: { members: count },
  SpeechRecognized: { confidence },
  QueueEntered: { queueTimeSec: duration },
  QueueLeft: { queueTimeSec: duration },
};

/** A number that was not projected: which field, its value as text (at most 64 characters) and why. */
export interface InvalidField {
  field: string;
  value: string;
  reason: string;
}

const MAX_VALUE_TEXT = 64;
export const valueText = (value: unknown): string => {
  const text = typeof value === 'string' ? value : typeof value === 'number' ? String(value) : JSON.stringify(value) ?? String(value);
  return text.length > MAX_VALUE_TEXT ? `${text.slice(0, MAX_VALUE_TEXT)}…` : text;
};

/** Why `value` is not a valid `schema` number, or null when it is. Non-numbers and non-finite numbers fail too. */
export const numberProblem = (schema: z.ZodNumber, value: unknown): string | null => {
  if (typeof value !== 'number') return 'not a number';
  if (!Number.isFinite(value)) return 'not finite';
  const r = schema.safeParse(value);
  return r.success ? null : (r.error.issues[0]?.message ?? 'out of range');
};

/** The bounds of one data field of one event type, if that field is numeric. */
export const numericFieldSchema = (type: string, field: string): z.ZodNumber | undefined =>
  (NUMERIC_FIELDS as Record<string, Record<string, z.ZodNumber> | undefined>)[type]?.[field];

/** A number read from a stored event (any age): the value when it is within its field's bounds, else undefined. */
export const boundedNumber = (type: string, field: string, value: unknown): number | undefined => {
  const schema = numericFieldSchema(type, field);
  if (value === undefined || value === null || !schema) return undefined;
  return numberProblem(schema, value) === null ? (value as number) : undefined;
};

/**
 * The runtime check applied to every translated event before it is stored (live ingest and import alike):
 * each numeric data field and the envelope's providerSeq are checked against their bounds; a bad one is
 * dropped and listed in `data.invalidFields`. Events with nothing wrong are returned as they are.
 */
export const boundEventNumbers = (event: TranslatedEvent): TranslatedEvent => {
  const fields = NUMERIC_FIELDS[event.type];
  const data = event.data as unknown as Record<string, unknown>;
  const invalid: InvalidField[] = [];
  let cleaned: Record<string, unknown> | null = null;
  for (const [field, schema] of Object.entries(fields ?? {})) {
    const value = data[field];
    if (value === undefined || value === null) continue;
    const reason = numberProblem(schema, value);
    if (reason === null) continue;
    invalid.push({ field, value: valueText(value), reason });
    cleaned ??= { ...data };
    delete cleaned[field];
  }
  let seq = event.providerSeq;
  if (seq !== null) {
    const reason = numberProblem(providerSeq, seq);
    if (reason !== null) {
      invalid.push({ field: 'providerSeq', value: valueText(seq), reason });
      seq = null;
    }
  }
  if (invalid.length === 0) return event;
  return { ...event, providerSeq: seq, data: { ...(cleaned ?? data), invalidFields: invalid } } as unknown as TranslatedEvent;
};
