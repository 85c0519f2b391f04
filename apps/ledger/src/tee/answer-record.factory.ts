import { createHash } from 'node:crypto';
import { appAnswersStreamName, canonicalJson, type AnswerEvent, type WebhookRecord } from '@lib/event-store';
import { dialectOf, parseAppAnswer, redactAppAnswer, type Provider } from '@lib/ledger';
import type { ForwardResult } from './app-forwarder.js';

/** Content type of an answer receipt: its body is the envelope below, canonical JSON. */
export const ANSWER_CONTENT_TYPE = 'application/vnd.call-ledger.app-answer+json';

export interface AnsweredDelivery {
  provider: Provider;
  /** The delivery's receipt, when it was stored (null: it could not be, the answer still is when it can). */
  receiptId: string | null;
  /** sha256 (hex) of the delivery's body: links the answer to it even when its receipt id is unknown. */
  bodySha256: string;
  /** The leg the delivery was about (its first translated event's leg), null when none. */
  legId: string | null;
  accountId: string | null;
  method: string;
  path: string;
}

/**
 * The app's answer as a receipt of its own (`source: 'answer'`). Its body is an envelope, so that two calls
 * answered with the same bytes remain two answers (the receipt dedupe is on the body) and so that what the
 * hash chain covers includes the status, the kept headers, the time it took and the redactions:
 * `{answers, answeredAt, outcome, status, headers, durationMs, body, bodyEncoding, bodySha256, redactions}`,
 * where `body` is the answer after redaction (UTF-8 text, or base64 when not UTF-8) and `bodySha256` the sha256
 * of exactly those bytes. The events: `AppAnswered` (linked to the delivery, with the instructions in order)
 * and one `DialRequested` per dial command, on the leg's answers stream.
 */
export const buildAnswerRecord = (delivery: AnsweredDelivery, result: ForwardResult, answeredAt: Date): WebhookRecord => {
  const { body, redactions } = result.outcome === 'answered' ? redactAppAnswer(delivery.provider, result.body) : { body: result.body, redactions: [] };
  const utf8 = isUtf8(body);
  const parsed =
    result.outcome !== 'answered'
      ? { parse: 'empty' as const, parseError: null, instructions: [], dials: [] }
      : result.status >= 200 && result.status < 300
        ? parseAppAnswer(delivery.provider, body)
        : { parse: 'unparseable' as const, parseError: `the app answered HTTP ${result.status}`, instructions: [], dials: [] };
  const envelope = {
    answers: { receiptId: delivery.receiptId, bodySha256: delivery.bodySha256, method: delivery.method, path: delivery.path },
    answeredAt: answeredAt.toISOString(),
    outcome: result.outcome,
    error: result.outcome === 'answered' ? null : result.error,
    status: result.status,
    headers: result.headers,
    durationMs: Math.round(result.durationMs * 1000) / 1000,
    body: utf8 ? body.toString('utf8') : body.toString('base64'),
    bodyEncoding: utf8 ? 'utf8' : 'base64',
    bodySha256: createHash('sha256').update(body).digest('hex'),
    redactions,
  };
  const raw = Buffer.from(canonicalJson(envelope), 'utf8');
  const streamName = appAnswersStreamName(delivery.provider, delivery.legId);
  const base = { legId: null, accountId: delivery.accountId, parentLegId: null, occurredAt: answeredAt.toISOString(), providerSeq: null, party: null, streamName };
  const events: AnswerEvent[] = [
    {
      ...base,
      type: 'AppAnswered',
      data: {
        legId: delivery.legId,
        answersReceiptId: delivery.receiptId,
        answersBodySha256: delivery.bodySha256,
        method: delivery.method,
        path: delivery.path,
        outcome: result.outcome,
        status: result.status,
        contentType: result.headers['content-type'] ?? null,
        durationMs: envelope.durationMs,
        dialect: dialectOf(delivery.provider),
        parse: parsed.parse,
        parseError: parsed.parseError,
        instructions: parsed.instructions,
        redactions: redactions.map((r) => r.path),
      },
    },
    ...parsed.dials.map((d): AnswerEvent => ({ ...base, type: 'DialRequested', data: { legId: delivery.legId, ...d } })),
  ];
  return {
    receipt: {
      provider: delivery.provider,
      body: raw,
      bodySha256: createHash('sha256').update(raw).digest(),
      contentType: ANSWER_CONTENT_TYPE,
      path: delivery.path,
      query: '',
      headers: {},
      remoteAddr: null,
      receivedAt: answeredAt,
      source: 'answer',
      signatureStatus: 'not-checked',
      signatureTimestamp: null,
    },
    events,
  };
};

const isUtf8 = (b: Buffer): boolean => {
  try {
    new TextDecoder('utf-8', { fatal: true }).decode(b);
    return true;
  } catch {
    return false;
  }
};
