import { z } from 'zod';
import type { DialRequest } from './app-answer.js';
import { CALL_EVENT_DATA, unrecognized, type CallEventDataMap, type TranslatedEvent } from './call-leg.events.js';
import { boundEventNumbers } from './numeric-bounds.js';

/**
 * Every event type's data, versioned. The store can never be rewritten, so an event keeps the version its data
 * was written in (`events.schema_version`) and is read through `parseEvent`, which brings old versions up to the
 * current one with the type's upcasters, one version at a time (as Emmett's upcasting and castore's event types
 * do). Changing a type's data shape therefore means: bump its `version`, add `upcasters[old]` taking the old
 * data to the new shape, a test for the old version in event-schemas.spec.ts, and a migration that lets
 * `ledger_append` store a schema version other than 1 (it writes 1 today: see event-store.repository.ts).
 */
export interface EventSchema<Data> {
  /** The version new events of this type are written in. */
  version: number;
  /** The data of the current version. */
  data: z.ZodType<Data>;
  /** `upcasters[v]` takes data written in version v to version v + 1. */
  upcasters: Readonly<Record<number, (data: Record<string, unknown>) => Record<string, unknown>>>;
}

/** What the app asked for in one answer (tee mode: apps/ledger/src/tee/answer-record.factory.ts). */
const appAnswered = z.object({
  legId: z.string().nullable(),
  answersReceiptId: z.string().nullable(),
  answersBodySha256: z.string(),
  method: z.string(),
  path: z.string(),
  /** What came of forwarding the delivery to the app (apps/ledger/src/tee/app-forwarder.ts). */
  outcome: z.enum(['answered', 'timeout', 'unreachable', 'too-large']),
  status: z.number().nullable(),
  contentType: z.string().nullable(),
  durationMs: z.number(),
  dialect: z.enum(['percl', 'jambonz', 'rcml']),
  parse: z.enum(['ok', 'empty', 'unparseable']),
  parseError: z.string().nullable(),
  instructions: z.array(z.string()),
  redactions: z.array(z.string()),
});

const dialRequested = z.object({
  legId: z.string().nullable(),
  index: z.number(),
  verb: z.string(),
  targets: z.array(z.object({ type: z.string(), value: z.string() })),
  mode: z.enum(['simultaneous', 'single']),
  ringTimeoutSec: z.number().nullable(),
  defaultRingTimeoutSec: z.number(),
  timeLimitSec: z.number().nullable(),
  callerId: z.string().nullable(),
  amd: z.unknown(),
  record: z.boolean().nullable(),
  hooks: z.record(z.string(), z.string()),
});

export const ANSWER_EVENT_DATA = { AppAnswered: appAnswered, DialRequested: dialRequested } as const;
export type AnswerEventDataMap = { [K in keyof typeof ANSWER_EVENT_DATA]: z.infer<(typeof ANSWER_EVENT_DATA)[K]> };
export type AnswerEventType = keyof AnswerEventDataMap;
// The app-answer reader's own type and the stored event must agree (a compile error here names the drift).
const _dialRequestFits = (d: DialRequest): Omit<AnswerEventDataMap['DialRequested'], 'legId'> => d;
void _dialRequestFits;

/**
 * Erasure by subject (README "Erasure and its proof"): `SubjectErased` on the `erasures-ledger` stream records the
 * request (what kind of subject, never its value; why; which key; what it touched), and `PersonalDataErased` ends
 * each stream whose events lost a value, naming the positions, so that every chain says where it was erased (and
 * the leg projections fold the leg again from its erased events).
 */
export const ERASURE_EVENT_DATA = {
  SubjectErased: z.object({
    erasureId: z.string(),
    subject: z.enum(['number', 'leg', 'call']),
    /** The subject's last two characters, never more: enough to tell requests apart, too few to find a number. */
    hint: z.string(),
    reason: z.string(),
    keyName: z.string(),
    streams: z.array(z.string()),
    events: z.number(),
    fields: z.number(),
    receipts: z.number(),
    /** Events of chain rules 1 and 2 that hold the subject: their values are hashed in clear and are kept. */
    notErasable: z.number(),
    /** The same counts in the months retention had archived (their files rewritten); absent before issue 16's archive erasure. */
    archived: z.object({ months: z.number(), events: z.number(), fields: z.number(), receipts: z.number(), notErasable: z.number() }).optional(),
  }),
  /**
   * `positions`: every event of the stream the erasure changed (values, or its receipt's body), archived ones included;
   * `fields`: values erased; `parties`: which of the leg's parties lost their value in an archived month, so that the
   * leg's row (a summary the projection cannot fold again from dropped events) reads `[erased]` there too.
   */
  PersonalDataErased: z.object({
    erasureId: z.string(),
    positions: z.array(z.string()),
    fields: z.number(),
    parties: z.array(z.enum(['from', 'to'])).optional(),
  }),
} as const;
export type ErasureEventDataMap = { [K in keyof typeof ERASURE_EVENT_DATA]: z.infer<(typeof ERASURE_EVENT_DATA)[K]> };

export type EventDataMap = CallEventDataMap & AnswerEventDataMap & ErasureEventDataMap;
export type StoredEventType = keyof EventDataMap;

const v1 = <D>(data: z.ZodType<D>): EventSchema<D> => ({ version: 1, data, upcasters: {} });

export type EventSchemas = { readonly [K in StoredEventType]: EventSchema<EventDataMap[K]> };

/** Each type at its version; a type's upcasters sit beside it. */
export const EVENT_SCHEMAS: EventSchemas = {
  CallInitiated: v1(CALL_EVENT_DATA.CallInitiated),
  CallRinging: v1(CALL_EVENT_DATA.CallRinging),
  CallAnswered: v1(CALL_EVENT_DATA.CallAnswered),
  CallCompleted: v1(CALL_EVENT_DATA.CallCompleted),
  ChildLegDialed: v1(CALL_EVENT_DATA.ChildLegDialed),
  DialCompleted: v1(CALL_EVENT_DATA.DialCompleted),
  MachineDetected: v1(CALL_EVENT_DATA.MachineDetected),
  RecordingAvailable: v1(CALL_EVENT_DATA.RecordingAvailable),
  ConferenceJoined: v1(CALL_EVENT_DATA.ConferenceJoined),
  ConferenceLeft: v1(CALL_EVENT_DATA.ConferenceLeft),
  ConferenceStatusChanged: v1(CALL_EVENT_DATA.ConferenceStatusChanged),
  DtmfReceived: v1(CALL_EVENT_DATA.DtmfReceived),
  SpeechRecognized: v1(CALL_EVENT_DATA.SpeechRecognized),
  QueueEntered: v1(CALL_EVENT_DATA.QueueEntered),
  QueueLeft: v1(CALL_EVENT_DATA.QueueLeft),
  AppHook: v1(CALL_EVENT_DATA.AppHook),
  UnrecognizedWebhook: v1(CALL_EVENT_DATA.UnrecognizedWebhook),
  AppAnswered: v1(ANSWER_EVENT_DATA.AppAnswered),
  DialRequested: v1(ANSWER_EVENT_DATA.DialRequested),
  SubjectErased: v1(ERASURE_EVENT_DATA.SubjectErased),
  PersonalDataErased: v1(ERASURE_EVENT_DATA.PersonalDataErased),
};

export const isStoredEventType = (type: string): type is StoredEventType => Object.hasOwn(EVENT_SCHEMAS, type);

/** The version an event of `type` is written in today (1 for a type this code does not know). */
export const schemaVersionOf = (type: string): number => (isStoredEventType(type) ? EVENT_SCHEMAS[type].version : 1);

/**
 * An event whose version this code cannot read: written by a newer release (rolled back since) or with no
 * upcaster to the current version. A data problem of that one event, never a reason to guess.
 */
export class EventVersionError extends Error {
  readonly code = 'EVENT.SCHEMA_VERSION_UNKNOWN';
  constructor(
    readonly type: string,
    readonly version: number,
    message: string,
  ) {
    super(message);
    this.name = 'EventVersionError';
  }
}

/**
 * One stored event's data, read: known type, upcast to its current version and checked against its schema
 * (`issues` null), or, when the stored data does not fit (written around the append path, or an old bug), the
 * data as stored with the schema's complaints. The projection reads every field defensively (numbers through
 * their bounds, links only when they are text), so such an event is projected as far as it can be, exactly as
 * before the schemas existed; `issues` says why it may be incomplete.
 */
export type ParsedEvent =
  | { [K in StoredEventType]: { known: true; type: K; data: EventDataMap[K]; issues: string[] | null } }[StoredEventType]
  | { known: false; type: string; data: Record<string, unknown>; issues: null };

const isRecord = (v: unknown): v is Record<string, unknown> => v !== null && typeof v === 'object' && !Array.isArray(v);

/** `parseEvent` over another registry: the production one is below; the upcaster tests bring their own. */
export const eventParser = (schemas: { readonly [type: string]: EventSchema<unknown> }) => {
  // Loose: keys the schema does not name (`invalidFields` from the numeric bounds) stay with the event. Built once
  // per type: a rebuild reads millions of events.
  const readSchemas = new Map(Object.entries(schemas).map(([type, s]) => [type, s.data instanceof z.ZodObject ? s.data.loose() : s.data]));
  return (type: string, version: number, stored: unknown): ParsedEvent => {
    // The append path always stores an object; anything else is read as an empty one (see ParsedEvent).
    let data: Record<string, unknown> = isRecord(stored) ? stored : {};
    const schema = Object.hasOwn(schemas, type) ? schemas[type] : undefined;
    if (!schema) return { known: false, type, data, issues: null };
    if (!Number.isInteger(version) || version < 1 || version > schema.version) {
      throw new EventVersionError(type, version, `${type} version ${version} is not readable here (current: ${schema.version})`);
    }
    for (let v = version; v < schema.version; v += 1) {
      const up = schema.upcasters[v];
      if (!up) throw new EventVersionError(type, version, `${type} has no upcaster from version ${v}`);
      data = up(data);
    }
    const checked = readSchemas.get(type)!.safeParse(data);
    // The one cast of the read path: the registry is looked up by a string at run time; EventSchemas ties each
    // type to its data's type, and the schema just checked the data.
    return {
      known: true,
      type,
      data: (checked.success ? checked.data : data) as never,
      issues: checked.success ? null : checked.error.issues.map((i) => `${i.path.join('.') || '(data)'}: ${i.message}`),
    } as ParsedEvent;
  };
};

/** Reads one stored event's data at any version this code knows (see ParsedEvent). */
export const parseEvent: (type: string, version: number, data: unknown) => ParsedEvent = eventParser(EVENT_SCHEMAS as never);

/**
 * The check at the write boundary: the problems of data about to be stored as `type` at its current version
 * (empty when none). Extra keys are refused here, apart from `invalidFields`, which the numeric bounds add.
 */
const invalidFields = z.array(z.object({ field: z.string(), value: z.string(), reason: z.string() })).optional();
/** Built once: zod compiles each object schema on first use, and a fresh `.extend()` per call would throw that away. */
const WRITE_SCHEMAS: Readonly<Record<string, z.ZodType>> = Object.fromEntries(
  Object.entries(EVENT_SCHEMAS).map(([type, s]) => [type, s.data instanceof z.ZodObject ? s.data.extend({ invalidFields }).strict() : s.data]),
);

export const eventDataProblems = (type: string, data: unknown): string[] => {
  const schema = Object.hasOwn(WRITE_SCHEMAS, type) ? WRITE_SCHEMAS[type] : undefined;
  if (!schema) return [`unknown event type ${type}`];
  const r = schema.safeParse(data);
  return r.success ? [] : r.error.issues.map((i) => `${type}.${i.path.join('.') || '(data)'}: ${i.message}`);
};

/**
 * The write boundary at run time, after translation (live ingest, import and tee alike): each event's numbers
 * are bounded (numeric-bounds.ts), then its data is checked against its schema. An event that does not fit (a
 * translator bug; none is known, translator-output.spec.ts keeps it so) is kept as UnrecognizedWebhook naming
 * the problems, like a translator that throws: the raw body stays the evidence, nothing ill-shaped is stored for
 * ever. The check costs about 2 µs an event (README, "Event schemas").
 */
export const storableEvents = (events: readonly (TranslatedEvent | null | undefined)[]): TranslatedEvent[] =>
  events.map((e) => {
    if (!e || typeof e !== 'object') return unrecognized('the translator produced an empty event');
    const bounded = boundEventNumbers(e);
    const problems = eventDataProblems(bounded.type, bounded.data);
    return problems.length === 0 ? bounded : unrecognized(`translated ${e.type} does not fit its schema: ${problems.slice(0, 3).join('; ')}`, e.legId, e.accountId);
  });
