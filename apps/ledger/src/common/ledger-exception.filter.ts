import { Catch, HttpException, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { isConnectionError, isUnstorableText } from '@lib/db';
import { LedgerError, type ErrorCode } from '@lib/ledger';
import type { FastifyReply } from 'fastify';

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

/**
 * The one place where error codes become HTTP statuses. Typed as a total map, so a code added to
 * `ERROR_CODES` does not compile until it has a status here.
 */
export const HTTP_STATUS_OF: { readonly [C in ErrorCode]: number } = {
  'WEBHOOK.SIGNATURE_INVALID': 401,
  'WEBHOOK.PROVIDER_UNKNOWN': 404,
  'WEBHOOK.PROVIDER_NOT_CONFIGURED': 403,
  'REQUEST.INVALID': 400,
  'REQUEST.INVALID_BODY': 400,
  'REQUEST.MALFORMED': 400,
  'REQUEST.TIMEOUT': 408,
  'REQUEST.BODY_TOO_LARGE': 413,
  'REQUEST.HEADERS_TOO_LARGE': 431,
  'REQUEST.UNSUPPORTED_MEDIA_TYPE': 415,
  'REQUEST.RATE_LIMITED': 429,
  'ROUTE.NOT_FOUND': 404,
  'ROUTE.METHOD_NOT_ALLOWED': 405,
  'AUTH.REQUIRED': 401,
  'AUTH.API_KEY_INVALID': 401,
  'AUTH.FORBIDDEN': 403,
  'AUTH.FORBIDDEN_SCOPE': 403,
  'AUTH.SESSION_REQUIRED': 401,
  'AUTH.CSRF': 403,
  'QUERY.INVALID_PARAMETER': 400,
  'QUERY.UNKNOWN_PARAMETER': 400,
  'QUERY.INVALID_CURSOR': 400,
  'CALL.NOT_FOUND': 404,
  'CALL.AMBIGUOUS': 409,
  'PROJECTION.NOT_FOUND': 404,
  'PROJECTION.LAGGING': 503,
  'READ.REPLICA_LAGGING': 503,
  'READ.REPLICA_UNAVAILABLE': 503,
  'IMPORT.UNSUPPORTED_MEDIA_TYPE': 415,
  'IMPORT.EMPTY': 400,
  'ERASURE.REFUSED': 409,
  'TEE.NOT_CONFIGURED': 404,
  'TEE.PATH_INVALID': 400,
  'TEE.APP_TIMEOUT': 504,
  'TEE.APP_UNREACHABLE': 502,
  'TEE.ANSWER_TOO_LARGE': 502,
  'SERVICE.UNAVAILABLE': 503,
  INTERNAL: 500,
};

/** Headers a status needs besides Retry-After (RFC 9110: a 401 names its authentication scheme). */
const CHALLENGE: Partial<Record<ErrorCode, Record<string, string>>> = {
  'AUTH.API_KEY_INVALID': { 'www-authenticate': 'Bearer' },
};

/** Codes for errors raised by Nest, Fastify or Node themselves, which know only a status. */
const CODE_OF_STATUS: Record<number, ErrorCode> = {
  400: 'REQUEST.INVALID',
  401: 'AUTH.REQUIRED',
  403: 'AUTH.FORBIDDEN',
  404: 'ROUTE.NOT_FOUND',
  405: 'ROUTE.METHOD_NOT_ALLOWED',
  408: 'REQUEST.TIMEOUT',
  413: 'REQUEST.BODY_TOO_LARGE',
  415: 'REQUEST.UNSUPPORTED_MEDIA_TYPE',
  429: 'REQUEST.RATE_LIMITED',
  431: 'REQUEST.HEADERS_TOO_LARGE',
  503: 'SERVICE.UNAVAILABLE',
};
const codeOfStatus = (status: number): ErrorCode => CODE_OF_STATUS[status] ?? (status >= 500 ? 'INTERNAL' : 'REQUEST.INVALID');

/** The response for a code: its status, the envelope, and Retry-After when the error carries a hint. */
export const errorResponse = (
  code: ErrorCode,
  message: string,
  options: { retryAfterSec?: number; details?: unknown } = {},
): { status: number; body: ErrorBody; headers: Record<string, string> } => {
  const error: ErrorBody['error'] = { code, message };
  if (options.details !== undefined) error.details = options.details;
  const headers: Record<string, string> = { ...CHALLENGE[code] };
  if (options.retryAfterSec !== undefined) headers['retry-after'] = String(Math.max(0, Math.ceil(options.retryAfterSec)));
  return { status: HTTP_STATUS_OF[code], body: { error }, headers };
};

/** Maps any error to `{"error": {"code", "message"}}`; unknown errors become a 500 without a stack. */
export const toErrorResponse = (err: unknown): { status: number; body: ErrorBody; headers: Record<string, string> } => {
  if (err instanceof LedgerError) {
    return errorResponse(err.code, err.message, err);
  }
  if (err instanceof HttpException) {
    const status = err.getStatus();
    const res = err.getResponse();
    const message =
      typeof res === 'string' ? res : Array.isArray((res as { message?: unknown }).message) ? ((res as { message: string[] }).message.join('; ')) : String((res as { message?: unknown }).message ?? err.message);
    return { status, body: { error: { code: codeOfStatus(status), message } }, headers: {} };
  }
  if (isConnectionError(err)) {
    return errorResponse('SERVICE.UNAVAILABLE', 'database unavailable, retry shortly', { retryAfterSec: 1 });
  }
  // Found by the query-parameter fuzzing: `/v1/calls/%00` reached PostgreSQL and was a 500.
  if (isUnstorableText(err)) {
    return errorResponse('REQUEST.INVALID', 'a parameter holds a character that cannot be searched for (NUL)');
  }
  // Fastify's own errors (body too large, bad content length, malformed JSON) carry a 4xx statusCode.
  const fst = err as { statusCode?: number; code?: string; message?: string };
  if (typeof fst?.statusCode === 'number' && fst.statusCode >= 400 && fst.statusCode < 500) {
    const code = codeOfStatus(fst.statusCode);
    return { status: fst.statusCode, body: { error: { code, message: fst.message ?? code } }, headers: {} };
  }
  return errorResponse('INTERNAL', 'internal error; the incident was logged');
};

@Catch()
export class LedgerExceptionFilter implements ExceptionFilter {
  private readonly logger = new Logger('Errors');

  catch(exception: unknown, host: ArgumentsHost): void {
    const reply = host.switchToHttp().getResponse<FastifyReply>();
    const { status, body, headers } = toErrorResponse(exception);
    if (status >= 500 && status !== 503) this.logger.error((exception as Error)?.stack ?? String(exception));
    void reply.status(status).headers(headers).send(body);
  }
}
