import { randomUUID } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { Logger } from '@nestjs/common';
import { Logger as PinoNestLogger, PinoLogger } from 'nestjs-pino';
import { pino, type DestinationStream, type Logger as PinoInstance } from 'pino';
import type { FastifyInstance } from 'fastify';
import type { LedgerConfig } from '@lib/config';

/**
 * Structured logs: one JSON object per line (pino), pretty-printed only when stdout is a terminal. Credentials
 * are redacted wherever they could appear in a logged object, and URLs are logged with credential-like query
 * values replaced, since Restcomm's shared token rides in `?token=`.
 */

const CENSOR = '[redacted]';
const SECRET_HEADERS = ['authorization', 'cookie', 'set-cookie', 'freeclimb-signature', 'jambonz-signature', 'x-twilio-signature', 'x-api-key', 'proxy-authorization'];
const SECRET_KEYS = ['token', 'apiKey', 'api_key', 'password', 'secret', 'authorization'];

export const REDACT_PATHS = [
  ...SECRET_HEADERS.flatMap((h) => [`req.headers["${h}"]`, `headers["${h}"]`, `res.headers["${h}"]`]),
  ...SECRET_KEYS.flatMap((k) => [k, `*.${k}`]),
];

/** Query parameters whose value is a credential (matched case-insensitively on the name). */
const SECRET_PARAM = /token|key|secret|signature|password|auth|sig/i;

/** The URL as it may be logged: credential-like query values replaced (the path is kept as sent). */
export const safeUrl = (url: string): string => {
  const q = url.indexOf('?');
  if (q < 0) return url;
  const parts = url
    .slice(q + 1)
    .split('&')
    .map((pair) => {
      const eq = pair.indexOf('=');
      const rawName = eq < 0 ? pair : pair.slice(0, eq);
      let name = rawName;
      try {
        name = decodeURIComponent(rawName.replace(/\+/g, ' '));
      } catch {
        /* a malformed name is judged as sent */
      }
      return eq >= 0 && SECRET_PARAM.test(name) ? `${rawName}=${CENSOR}` : pair;
    });
  return `${url.slice(0, q)}?${parts.join('&')}`;
};

/** A client's X-Request-Id is reused when it is short and plain (so that it cannot forge log content). */
const SANE_REQUEST_ID = /^[A-Za-z0-9._:-]{1,128}$/;

export const requestId = (req: IncomingMessage): string => {
  const given = req.headers['x-request-id'];
  return typeof given === 'string' && SANE_REQUEST_ID.test(given) ? given : randomUUID();
};

export const createRootLogger = (level: LedgerConfig['logLevel'], destination?: DestinationStream): PinoInstance => {
  const options = {
    level,
    redact: { paths: REDACT_PATHS, censor: CENSOR },
    timestamp: pino.stdTimeFunctions.isoTime,
    formatters: { level: (label: string) => ({ level: label }) },
    base: { pid: process.pid },
  };
  if (destination) return pino(options, destination);
  if (process.stdout.isTTY) return pino({ ...options, transport: { target: 'pino-pretty', options: { translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid' } } });
  // process.stdout rather than pino's own fd writer: writes to a pipe or a file are synchronous on Linux, so
  // nothing is lost at process.exit, and whatever wraps stdout (tests, supervisors) sees every line.
  return pino(options, process.stdout);
};

/**
 * For entry points: a root logger, with Nest's static Logger routed to it from here on (so lines written before
 * an application exists, such as the embedded PostgreSQL start, are JSON too). Returns the root for createApp.
 */
export const useJsonLogs = (level: LedgerConfig['logLevel']): PinoInstance => {
  const root = createRootLogger(level);
  Logger.overrideLogger(new PinoNestLogger(new PinoLogger({ pinoHttp: { logger: root } }), {}));
  return root;
};

/** Echoes the request id and writes one access line per answered request. */
export const registerAccessLog = (fastify: FastifyInstance): void => {
  fastify.addHook('onRequest', (req, reply, done) => {
    void reply.header('x-request-id', req.id);
    done();
  });
  fastify.addHook('onResponse', (req, reply, done) => {
    req.log.info(
      {
        method: req.method,
        route: req.routeOptions.url ?? null,
        url: safeUrl(req.url),
        status: reply.statusCode,
        durationMs: Math.round(reply.elapsedTime * 10) / 10,
        remoteAddress: req.ip,
      },
      'request completed',
    );
    done();
  });
};
