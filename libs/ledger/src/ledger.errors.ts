import type { ErrorCode } from './error-codes.js';

export interface LedgerErrorOptions {
  /** The caller may retry after this many seconds (the edge turns it into `Retry-After`). */
  readonly retryAfterSec?: number;
  /** Structured facts the client can act on (served as `error.details`). */
  readonly details?: unknown;
}

/**
 * A refusal the API answers with: a stable code (listed in `error-codes.ts`), a message for people, and data.
 * No HTTP here: the exception filter maps the code to a status. Anything that is not a LedgerError is a bug
 * and is answered as a generic 500 without details.
 */
export class LedgerError extends Error {
  readonly retryAfterSec?: number;
  readonly details?: unknown;

  constructor(
    readonly code: ErrorCode,
    message: string,
    options: LedgerErrorOptions = {},
  ) {
    super(message);
    this.name = 'LedgerError';
    if (options.retryAfterSec !== undefined) this.retryAfterSec = options.retryAfterSec;
    if (options.details !== undefined) this.details = options.details;
  }
}

export const signatureInvalid = (reason: string) => new LedgerError('WEBHOOK.SIGNATURE_INVALID', reason);
export const providerUnknown = (provider: string) =>
  new LedgerError('WEBHOOK.PROVIDER_UNKNOWN', `unknown provider "${provider}": use freeclimb, jambonz, twilio or restcomm`);
export const bodyTooLarge = (limit: number) => new LedgerError('REQUEST.BODY_TOO_LARGE', `request body exceeds the limit of ${limit} bytes`);
export const unavailable = (message: string, retryAfterSec = 1) => new LedgerError('SERVICE.UNAVAILABLE', message, { retryAfterSec });
export const rateLimited = (message: string, retryAfterSec: number) => new LedgerError('REQUEST.RATE_LIMITED', message, { retryAfterSec });
export const unauthorized = (message = 'missing or invalid API key: send Authorization: Bearer <key>') => new LedgerError('AUTH.API_KEY_INVALID', message);
export const badRequest = (code: ErrorCode, message: string) => new LedgerError(code, message);
export const forbiddenScope = (keyName: string, scope: string) =>
  new LedgerError('AUTH.FORBIDDEN_SCOPE', `the API key "${keyName}" lacks the "${scope}" scope this route needs`);
/**
 * Only the form providers call a URL with GET (Twilio and Restcomm voice URLs and callbacks set to GET, the
 * parameters in the query). FreeClimb always POSTs, and a jambonz GET hook carries no data and a signature over a
 * body it does not send (docs/providers.md), so a GET from either is no delivery.
 */
export const GET_PROVIDERS: readonly string[] = ['twilio', 'restcomm'];
export const methodNotAllowed = (provider: string, method: string) =>
  new LedgerError('ROUTE.METHOD_NOT_ALLOWED', `${provider} deliveries are POSTed; only twilio and restcomm call a URL with ${method}`);
export const providerNotConfigured = (provider: string) =>
  new LedgerError(
    'WEBHOOK.PROVIDER_NOT_CONFIGURED',
    `no secret is configured for ${provider}, so its deliveries cannot be authenticated and are refused; set its secret, or list it in LEDGER_ACCEPT_UNSIGNED for development`,
  );

/** Tee mode (README "Tee mode"): the app could not give an answer, so the provider gets what a dead or slow app gives. */
export const teeNotConfigured = (provider: string) =>
  new LedgerError('TEE.NOT_CONFIGURED', `no app URL is configured for ${provider}: set LEDGER_TEE_${provider.toUpperCase()}_URL`);
export const teePathInvalid = () => new LedgerError('TEE.PATH_INVALID', 'the sub-path leaves the configured app URL (dot segments)');
export const teeAppTimeout = (message: string) => new LedgerError('TEE.APP_TIMEOUT', message);
export const teeAppUnreachable = (message: string) => new LedgerError('TEE.APP_UNREACHABLE', message);
export const teeAnswerTooLarge = (message: string) => new LedgerError('TEE.ANSWER_TOO_LARGE', message);
