export const PG_UNIQUE_VIOLATION = '23505';

/**
 * SQLSTATEs and socket codes that mean "the database cannot serve this right now; the same request may succeed
 * shortly", as opposed to a bad statement:
 * - the server is gone or unreachable (sockets, 08xxx, 57P01-57P03 shutdown/crash, 53300 too many connections);
 * - one of the service's timeouts fired: 57014 (statement_timeout, or a cancel), 55P03 (lock_timeout),
 *   25P03 (idle_in_transaction_session_timeout, the session is closed), 57P05 (idle_session_timeout).
 * The service answers these with 503 and `Retry-After`; the group commit treats them as transient.
 */
const UNAVAILABLE_CODES = new Set([
  'ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', 'EHOSTUNREACH', 'ENETUNREACH',
  '57P01', '57P02', '57P03', '57P05', '08000', '08003', '08006', '08001', '08004', '53300',
  '57014', '55P03', '25P03',
]);

/** Errors that mean "the database is not there right now" (or did not answer in time), not a bad statement. */
export const isConnectionError = (err: unknown): boolean => {
  const e = err as { code?: string; message?: string } | undefined;
  if (!e) return false;
  if (e.code && UNAVAILABLE_CODES.has(e.code)) return true;
  return /timeout exceeded when trying to connect|Connection terminated|connection error|Client has encountered a connection error|Query read timeout/i.test(e.message ?? '');
};

/**
 * Text PostgreSQL cannot take: a NUL character (22021, "invalid byte sequence for encoding UTF8: 0x00") or one
 * outside the encoding (22P05). It comes from the request (a `%00` in a path or query parameter), so it is the
 * client's error, not the server's.
 */
export const isUnstorableText = (err: unknown): boolean => {
  const code = (err as { code?: string } | undefined)?.code;
  return code === '22021' || code === '22P05';
};

/**
 * Errors that say nothing about the statement's data and go away on a retry: serialization failure, deadlock,
 * lock timeout, a cancelled statement (statement_timeout, pg_cancel_backend), too many connections, lack of
 * resources, an administrator's shutdown, the pools' idle timeouts. Retrying the same batch is right; isolating a
 * "culprit" is not. Many of these are also connection errors (503 at the HTTP edge once retries are spent); a
 * socket error is not retried here: the server is gone, and the caller answers 503 at once.
 */
const TRANSIENT_CODES = new Set(['40001', '40P01', '55P03', '57014', '25P03', '57P05', '53000', '53100', '53200', '53300', '53400', '57P01', '57P02', '57P03', '58000', '58030']);
export const isTransientError = (err: unknown): boolean => {
  const code = (err as { code?: string } | undefined)?.code;
  return code !== undefined && TRANSIENT_CODES.has(code);
};

/**
 * Errors caused by one row's data: class 22 (data exception: bad encoding, out of range), 23 (integrity
 * constraint) and 54 (program limit exceeded: a value too large for an index). Only these justify splitting a
 * batch to find the record that causes them.
 */
export const isDataError = (err: unknown): boolean => {
  const code = (err as { code?: string } | undefined)?.code;
  return typeof code === 'string' && /^(22|23|54)/.test(code);
};
