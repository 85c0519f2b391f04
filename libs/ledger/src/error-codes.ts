/**
 * Every error code the API can answer with, in one place. Codes are part of the API contract (clients branch on
 * them), so a code is added here first and never renamed. The HTTP status of each code is decided at the edge,
 * in `apps/ledger/src/common/ledger-exception.filter.ts`; a spec checks that both lists hold the same codes.
 */
export const ERROR_CODES = [
  // Webhook deliveries
  'WEBHOOK.SIGNATURE_INVALID',
  'WEBHOOK.PROVIDER_UNKNOWN',
  'WEBHOOK.PROVIDER_NOT_CONFIGURED',
  // Any request, before or outside routing
  'REQUEST.INVALID',
  'REQUEST.INVALID_BODY',
  'REQUEST.MALFORMED',
  'REQUEST.TIMEOUT',
  'REQUEST.BODY_TOO_LARGE',
  'REQUEST.HEADERS_TOO_LARGE',
  'REQUEST.UNSUPPORTED_MEDIA_TYPE',
  'REQUEST.RATE_LIMITED',
  'ROUTE.NOT_FOUND',
  'ROUTE.METHOD_NOT_ALLOWED',
  // API keys
  'AUTH.REQUIRED',
  'AUTH.API_KEY_INVALID',
  'AUTH.FORBIDDEN',
  'AUTH.FORBIDDEN_SCOPE',
  // Console sessions
  'AUTH.SESSION_REQUIRED',
  'AUTH.CSRF',
  // Query parameters
  'QUERY.INVALID_PARAMETER',
  'QUERY.UNKNOWN_PARAMETER',
  'QUERY.INVALID_CURSOR',
  // Queries and commands
  'CALL.NOT_FOUND',
  'CALL.AMBIGUOUS',
  'PROJECTION.NOT_FOUND',
  'PROJECTION.LAGGING',
  // Reads from a streaming replica (DATABASE_READ_URL)
  'READ.REPLICA_LAGGING',
  'READ.REPLICA_UNAVAILABLE',
  'IMPORT.UNSUPPORTED_MEDIA_TYPE',
  'IMPORT.EMPTY',
  'ERASURE.REFUSED',
  // Tee mode: the app behind the ledger
  'TEE.NOT_CONFIGURED',
  'TEE.PATH_INVALID',
  'TEE.APP_TIMEOUT',
  'TEE.APP_UNREACHABLE',
  'TEE.ANSWER_TOO_LARGE',
  // The service itself
  'SERVICE.UNAVAILABLE',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];
