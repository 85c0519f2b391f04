export const PG_UNIQUE_VIOLATION = '23505';

/** Errors that mean "the database is not there right now", as opposed to a bad statement. */
export const isConnectionError = (err: unknown): boolean => {
  const e = err as { code?: string; message?: string } | undefined;
  if (!e) return false;
  if (e.code && ['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'ENOTFOUND', '57P01', '57P02', '57P03', '08000', '08003', '08006', '08001', '08004'].includes(e.code)) {
    return true;
  }
  return /timeout exceeded when trying to connect|Connection terminated|connection error|Client has encountered a connection error/i.test(e.message ?? '');
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
