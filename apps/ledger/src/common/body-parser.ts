import type { FastifyInstance, FastifyRequest } from 'fastify';
import { bodyTooLarge } from '@lib/ledger';

export const WEBHOOK_PREFIX = '/v1/webhooks/';
/** Tee mode: a delivery forwarded to the app; its body is kept raw exactly like a webhook's. */
export const TEE_PREFIX = '/v1/tee/';
export const isDeliveryUrl = (url: string): boolean => url.startsWith(WEBHOOK_PREFIX) || url.startsWith(TEE_PREFIX);
export const STREAMING_ROUTES = new Set(['/v1/import']);

const collect = (payload: NodeJS.ReadableStream, limit: number): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    payload.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > limit) {
        done = true;
        // Keep reading to the end so that the 413 reaches the client instead of a reset connection.
        payload.resume();
        reject(bodyTooLarge(limit));
        return;
      }
      chunks.push(chunk);
    });
    payload.on('end', () => {
      if (!done) resolve(Buffer.concat(chunks, size));
    });
    payload.on('error', (err) => {
      if (!done) {
        done = true;
        reject(err);
      }
    });
  });

/** `type/subtype` with optional parameters (RFC 9110 media-type tokens). */
const MEDIA_TYPE = /^\s*[!#$%&'*+.^_`|~0-9A-Za-z-]+\/[!#$%&'*+.^_`|~0-9A-Za-z-]+\s*(;.*)?$/;
const DECLARED_TYPE = Symbol('declaredContentType');

/**
 * Fastify answers 415 to a body whose Content-Type is empty or malformed before any parser runs; a signed
 * webhook must be kept whatever its headers say (translation sniffs the bytes, and stores it as unrecognized if
 * they cannot be read). So for webhooks such a header is set aside while the body is read, and put back
 * afterwards, so that the receipt keeps what was sent (an empty one is stored as no content type).
 */
const keepWebhooksWithoutMediaType = (fastify: FastifyInstance): void => {
  fastify.addHook('onRequest', (req, _reply, done) => {
    const declared = req.headers['content-type'];
    if (declared !== undefined && isDeliveryUrl(req.url) && !MEDIA_TYPE.test(declared)) {
      (req.raw as unknown as Record<symbol, string>)[DECLARED_TYPE] = declared;
      delete req.raw.headers['content-type'];
    }
    done();
  });
  fastify.addHook('preValidation', (req, _reply, done) => {
    const declared = (req.raw as unknown as Record<symbol, string | undefined>)[DECLARED_TYPE];
    if (declared !== undefined) req.raw.headers['content-type'] = declared;
    done();
  });
};

/**
 * One parser for every content type, so that nothing is parsed before it is kept: webhook bodies stay raw
 * bytes (signatures are over bytes, and an unparseable authentic body must still be stored), /v1/import gets
 * the stream itself (uploads are unbounded and read line by line), and the small admin bodies are JSON.
 */
export const registerBodyParsers = (fastify: FastifyInstance, maxBodyBytes: number): void => {
  keepWebhooksWithoutMediaType(fastify);
  fastify.removeAllContentTypeParsers();
  fastify.addContentTypeParser('*', (req: FastifyRequest, payload, done) => {
    const path = req.url.split('?', 1)[0]!;
    if (STREAMING_ROUTES.has(path)) {
      done(null, payload);
      return;
    }
    const declared = Number(req.headers['content-length']);
    if (Number.isFinite(declared) && declared > maxBodyBytes) {
      payload.resume();
      done(bodyTooLarge(maxBodyBytes), undefined);
      return;
    }
    collect(payload, maxBodyBytes).then(
      (buf) => {
        if (isDeliveryUrl(path)) return done(null, buf);
        if (buf.length === 0) return done(null, undefined);
        try {
          done(null, JSON.parse(buf.toString('utf8')));
        } catch {
          done(Object.assign(new Error('request body is not valid JSON'), { statusCode: 400 }), undefined);
        }
      },
      (err: Error) => done(err, undefined),
    );
  });
};
