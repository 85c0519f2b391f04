import { z } from 'zod';

// ignoreBOM keeps a leading U+FEFF in a value instead of silently eating it: the bytes are the evidence.
const utf8 = new TextDecoder('utf-8', { fatal: true, ignoreBOM: true });

export interface FormBody {
  /** First value per name: what the translator reads (a repeated name must not turn a scalar into a list). */
  fields: Record<string, string>;
  /** Every name/value pair in body order, repeats included: what a Twilio signature is computed over. */
  pairs: Array<[string, string]>;
}

export type FormParseResult = ({ ok: true } & FormBody) | { ok: false; reason: string };

const isHex = (b: number | undefined): boolean =>
  b !== undefined && ((b >= 0x30 && b <= 0x39) || (b >= 0x41 && b <= 0x46) || (b >= 0x61 && b <= 0x66));

/**
 * application/x-www-form-urlencoded decoding done on bytes, so that a percent-escaped invalid UTF-8 sequence is
 * rejected like a raw one instead of becoming U+FFFD (which URLSearchParams would do silently).
 * A malformed escape ("%G1", trailing "%") stays literal, as in the WHATWG parser.
 */
const decodeComponent = (bytes: Buffer): string => {
  const out = Buffer.allocUnsafe(bytes.length);
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (b === 0x2b) {
      out[n++] = 0x20;
    } else if (b === 0x25 && isHex(bytes[i + 1]) && isHex(bytes[i + 2])) {
      out[n++] = Number.parseInt(String.fromCharCode(bytes[i + 1]!, bytes[i + 2]!), 16);
      i += 2;
    } else {
      out[n++] = b;
    }
  }
  return utf8.decode(out.subarray(0, n));
};

/**
 * Strict read of a form body (docs/providers.md, "Restcomm and Twilio requests"). Restcomm sends null parameters as a bare name
 * (`&RecordingUrl&`), read here as ''. Invalid UTF-8 is a reason, never an exception.
 */
export const parseFormBody = (raw: Buffer): FormParseResult => {
  try {
    utf8.decode(raw);
  } catch {
    return { ok: false, reason: 'body is not valid UTF-8' };
  }
  // Built without a prototype so that a hostile `__proto__=` or `constructor=` is just a key.
  const fields: Record<string, string> = Object.create(null) as Record<string, string>;
  const pairs: Array<[string, string]> = [];
  let start = 0;
  while (start <= raw.length) {
    let end = raw.indexOf(0x26, start);
    if (end === -1) end = raw.length;
    if (end > start) {
      const piece = raw.subarray(start, end);
      const eq = piece.indexOf(0x3d);
      const nameBytes = eq === -1 ? piece : piece.subarray(0, eq);
      const valueBytes = eq === -1 ? Buffer.alloc(0) : piece.subarray(eq + 1);
      let name: string;
      let value: string;
      try {
        name = decodeComponent(nameBytes);
        value = decodeComponent(valueBytes);
      } catch {
        return { ok: false, reason: 'form field is not valid UTF-8 after percent-decoding' };
      }
      pairs.push([name, value]);
      if (!(name in fields)) fields[name] = value;
    }
    start = end + 1;
  }
  return { ok: true, fields, pairs };
};

/** Same shape from a query string: Restcomm GET callbacks carry their parameters there (docs/providers.md, "Restcomm and Twilio requests"). */
export const formBodyFromQuery = (query: URLSearchParams): FormBody => {
  const fields: Record<string, string> = Object.create(null) as Record<string, string>;
  const pairs: Array<[string, string]> = [];
  for (const [name, value] of query) {
    pairs.push([name, value]);
    if (!(name in fields)) fields[name] = value;
  }
  return { fields, pairs };
};

const str = z.string().optional();

/**
 * The parameters the translator reads (docs/providers.md, "Restcomm and Twilio requests"). Everything is a string on the wire, including
 * numbers and the literal "null"; interpretation (toNumber / presentString) happens in the translator.
 * Unknown keys (SipHeader_*, DialSipHeader_*, Twilio geo fields...) pass through untouched.
 */
export const rcmlWebhookSchema = z.looseObject({
  CallSid: str,
  AccountSid: str,
  InstanceId: str,
  ApiVersion: str,
  CallStatus: str,
  Direction: str,
  ParentCallSid: str,
  OutboundCallSid: str,
  From: str,
  To: str,
  CallerName: str,
  ForwardedFrom: str,
  CallTimestamp: str,
  CallbackSource: str,
  SequenceNumber: str,
  Timestamp: str,
  CallDuration: str,
  SipResponseCode: str,
  DialCallSid: str,
  DialCallStatus: str,
  DialCallDuration: str,
  DialRingDuration: str,
  DialSipCallId: str,
  DialSipResponseCode: str,
  RecordingUrl: str,
  PublicRecordingUrl: str,
  RecordingSid: str,
  RecordingDuration: str,
  RecordingStatus: str,
  RecordingSource: str,
  RecordingChannels: str,
  RecordingStartTime: str,
  Digits: str,
  SpeechResult: str,
  Confidence: str,
  ErrorCode: str,
  ErrorMessage: str,
  FailureReason: str,
  AnsweredBy: str,
  MachineDetectionDuration: str,
  ConferenceSid: str,
  FriendlyName: str,
  StatusCallbackEvent: str,
  CallSidEndingConference: str,
  QueueResult: str,
  QueueSid: str,
  QueueTime: str,
  QueuePosition: str,
});

export type RcmlWebhook = z.infer<typeof rcmlWebhookSchema>;
