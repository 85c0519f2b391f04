/**
 * Every error the API answers with has a stable code and an HTTP status; one exception filter maps them.
 * Anything that is not a LedgerError is a bug and is answered as a generic 500 without details.
 */
export class LedgerError extends Error {
  constructor(
    readonly code: string,
    readonly status: number,
    message: string,
    readonly headers: Record<string, string> = {},
    readonly details?: unknown,
  ) {
    super(message);
    this.name = 'LedgerError';
  }
}

export const signatureInvalid = (reason: string) => new LedgerError('WEBHOOK.SIGNATURE_INVALID', 401, reason);
export const providerUnknown = (provider: string) =>
  new LedgerError('WEBHOOK.PROVIDER_UNKNOWN', 404, `unknown provider "${provider}": use freeclimb, jambonz, twilio or restcomm`);
export const bodyTooLarge = (limit: number) =>
  new LedgerError('REQUEST.BODY_TOO_LARGE', 413, `request body exceeds the limit of ${limit} bytes`);
export const unavailable = (message: string, retryAfterSec = 1) =>
  new LedgerError('SERVICE.UNAVAILABLE', 503, message, { 'retry-after': String(retryAfterSec) });
export const rateLimited = (message: string, retryAfterSec: number) =>
  new LedgerError('REQUEST.RATE_LIMITED', 429, message, { 'retry-after': String(retryAfterSec) });
export const unauthorized = (message = 'missing or invalid API key: send Authorization: Bearer <key>') =>
  new LedgerError('AUTH.API_KEY_INVALID', 401, message, { 'www-authenticate': 'Bearer' });
export const badRequest = (code: string, message: string) => new LedgerError(code, 400, message);
export const forbiddenScope = (keyName: string, scope: string) =>
  new LedgerError('AUTH.FORBIDDEN_SCOPE', 403, `the API key "${keyName}" lacks the "${scope}" scope this route needs`);
export const providerNotConfigured = (provider: string) =>
  new LedgerError(
    'WEBHOOK.PROVIDER_NOT_CONFIGURED',
    403,
    `no secret is configured for ${provider}, so its deliveries cannot be authenticated and are refused; set its secret, or list it in LEDGER_ACCEPT_UNSIGNED for development`,
  );

/** Tee mode (README "Tee mode"): the app could not give an answer, so the provider gets what a dead or slow app gives. */
export const teeNotConfigured = (provider: string) =>
  new LedgerError('TEE.NOT_CONFIGURED', 404, `no app URL is configured for ${provider}: set LEDGER_TEE_${provider.toUpperCase()}_URL`);
export const teePathInvalid = () => new LedgerError('TEE.PATH_INVALID', 400, 'the sub-path leaves the configured app URL (dot segments)');
export const teeAppTimeout = (message: string) => new LedgerError('TEE.APP_TIMEOUT', 504, message);
export const teeAppUnreachable = (message: string) => new LedgerError('TEE.APP_UNREACHABLE', 502, message);
export const teeAnswerTooLarge = (message: string) => new LedgerError('TEE.ANSWER_TOO_LARGE', 502, message);
