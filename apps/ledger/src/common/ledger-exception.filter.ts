import { Catch, HttpException, Logger, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import { isConnectionError, isUnstorableText } from '@lib/db';
import { LedgerError } from '@lib/ledger';
import type { FastifyReply } from 'fastify';

export interface ErrorBody {
  error: { code: string; message: string; details?: unknown };
}

const HTTP_CODES: Record<number, string> = {
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

/** Maps any error to `{"error": {"code", "message"}}`; unknown errors become a 500 without a stack. */
export const toErrorResponse = (err: unknown): { status: number; body: ErrorBody; headers: Record<string, string> } => {
  if (err instanceof LedgerError) {
    const error: ErrorBody['error'] = { code: err.code, message: err.message };
    if (err.details !== undefined) error.details = err.details;
    return { status: err.status, body: { error }, headers: err.headers };
  }
  if (err instanceof HttpException) {
    const status = err.getStatus();
    const res = err.getResponse();
    const message =
      typeof res === 'string' ? res : Array.isArray((res as { message?: unknown }).message) ? ((res as { message: string[] }).message.join('; ')) : String((res as { message?: unknown }).message ?? err.message);
    return { status, body: { error: { code: HTTP_CODES[status] ?? `HTTP.${status}`, message } }, headers: {} };
  }
  if (isConnectionError(err)) {
    return { status: 503, body: { error: { code: 'SERVICE.UNAVAILABLE', message: 'database unavailable, retry shortly' } }, headers: { 'retry-after': '1' } };
  }
  // Found by the query-parameter fuzzing: `/v1/calls/%00` reached PostgreSQL and was a 500.
  if (isUnstorableText(err)) {
    return { status: 400, body: { error: { code: 'REQUEST.INVALID', message: 'a parameter holds a character that cannot be searched for (NUL)' } }, headers: {} };
  }
  // Fastify's own errors (body too large, bad content length, malformed JSON) carry a 4xx statusCode.
  const fst = err as { statusCode?: number; code?: string; message?: string };
  if (typeof fst?.statusCode === 'number' && fst.statusCode >= 400 && fst.statusCode < 500) {
    const code = HTTP_CODES[fst.statusCode] ?? `HTTP.${fst.statusCode}`;
    return { status: fst.statusCode, body: { error: { code, message: fst.message ?? code } }, headers: {} };
  }
  return { status: 500, body: { error: { code: 'INTERNAL', message: 'internal error; the incident was logged' } }, headers: {} };
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
