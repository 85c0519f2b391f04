import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { maskDocument } from '@lib/ledger';
import type { AuthenticatedRequest } from './api-key.guard.js';

/**
 * Every JSON answer to a `read-masked` key goes out with its numbers masked (libs/ledger masking.ts): one hook on the
 * serialisation of every route's answer and the console's calls to them, so that a new route cannot forget. Fastify
 * runs it for documents only, not for strings, buffers or streams: streamed answers (the exports) mask their own rows
 * (ExportCallsQuery), or refuse masked keys. Error answers go out as they are (as they did past the interceptor this
 * replaces). A Fastify hook rather than a global Nest interceptor: any interceptor puts every request of every route,
 * webhooks included, through Nest's RxJS pipeline (subjects, a disconnect watch, async resources), about a quarter of
 * the framework's CPU per request (`/internal/noop`: 37 → 27 µs).
 */
export const registerMasking = (fastify: FastifyInstance): void => {
  fastify.addHook('preSerialization', (req: FastifyRequest, reply: FastifyReply, payload: unknown, done: (err: null, payload: unknown) => void) => {
    const masked = (req as AuthenticatedRequest).actor?.masked === true;
    if (!masked || reply.statusCode >= 400 || payload === null || typeof payload !== 'object' || typeof (payload as { getStream?: unknown }).getStream === 'function') {
      done(null, payload);
      return;
    }
    done(null, maskDocument(payload));
  });
};
