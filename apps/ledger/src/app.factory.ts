import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { LedgerConfig } from '@lib/config';
import { LogController, type FastifyReply, type FastifyRequest } from 'fastify';
import { Logger as PinoNestLogger, PinoLogger } from 'nestjs-pino';
import type { DestinationStream, Logger as PinoInstance } from 'pino';
import type { Database } from '@lib/db';
import { AppModule } from './app.module.js';
import { registerBodyParsers } from './common/body-parser.js';
import { guardConnections, clientErrorHandler, registerEdgeHooks, serverOptions } from './common/http-edge.js';
import { toErrorResponse } from './common/ledger-exception.filter.js';
import { createRootLogger, registerAccessLog, requestId, safeUrl } from './common/logging.js';
import { registerMasking } from './common/masking.hook.js';
import { setupOpenApi } from './common/openapi.setup.js';
import type { SchemaState } from './common/tokens.js';
import { MetricsService } from './metrics/metrics.service.js';
import { RejectionLog } from './webhooks/rejection-log.js';

export interface CreateAppOptions {
  config: LedgerConfig;
  db: Database;
  /** The projector's pool when it runs as a role of its own (see AppModuleOptions). */
  projectorDb?: Database;
  /** DATABASE_READ_URL's pool (see AppModuleOptions). */
  replicaDb?: Database;
  replicaProbeMs?: number;
  schema: SchemaState;
  databaseUrl?: string | null;
  benchRoutes?: boolean;
  /** The process's root logger (main creates it before the database starts); default: a new one. */
  logger?: PinoInstance;
  /** Where a new root logger writes (tests capture it); default: stdout. */
  logDestination?: DestinationStream;
}

/** Trust the nearest `n` proxies (Fastify's hop-count form, as a function so that its types accept it). */
const hops = (n: number) => (_address: string, hop: number) => hop < n;

/** Builds the HTTP application (not listening yet); tests and main share it. */
export const createApp = async (options: CreateAppOptions): Promise<NestFastifyApplication> => {
  const { config } = options;
  const logger = options.logger ?? createRootLogger(config.logLevel, options.logDestination);
  const adapter = new FastifyAdapter({
    ...serverOptions(config.http),
    bodyLimit: config.maxBodyBytes,
    trustProxy: typeof config.trustProxy === 'number' ? hops(config.trustProxy) : config.trustProxy,
    loggerInstance: logger,
    // One access line per request is written by registerAccessLog instead of Fastify's two.
    logController: new LogController({ disableRequestLogging: true }),
    genReqId: requestId,
    clientErrorHandler,
    // Requests that arrive on an open connection while the service drains are still served (with
    // `Connection: close`), rather than answered 503 in Fastify's own error shape.
    return503OnClosing: false,
    // Errors Fastify raises before routing (a malformed percent-encoding in the path: FST_ERR_BAD_URL) skip
    // Nest's filter and were answered in Fastify's own shape; the API promises {"error": {"code", "message"}}.
    frameworkErrors: (err: Error, _req: FastifyRequest, reply: FastifyReply) => {
      const { status, body, headers } = toErrorResponse(err);
      void reply.status(status).headers(headers).send(body);
    },
  });
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot({
      config,
      db: options.db,
      projectorDb: options.projectorDb,
      replicaDb: options.replicaDb,
      replicaProbeMs: options.replicaProbeMs,
      schema: options.schema,
      databaseUrl: options.databaseUrl ?? null,
      benchRoutes: options.benchRoutes,
      // Fastify owns the request logging (request id, access line); nestjs-pino routes Nest's Logger to pino.
      logging: { pinoHttp: { logger }, useExisting: true, forRoutes: [] },
    }),
    adapter,
    { bodyParser: false, bufferLogs: true },
  );
  app.useLogger(app.get(PinoNestLogger));
  const fastify = app.getHttpAdapter().getInstance();
  guardConnections(fastify.server, config.http.maxConnections, {
    shed: (kind) => logger.warn({ kind, max: config.http.maxConnections }, 'connection cap reached'),
    aborted: (req) => logger.warn({ method: req.method, url: safeUrl(req.url ?? '') }, 'connection closed before the answer was sent'),
  });
  registerAccessLog(fastify);
  registerMasking(fastify);
  const rejections = app.get(RejectionLog);
  const metrics = app.get(MetricsService);
  registerEdgeHooks(fastify, {
    config,
    onUnsigned: (provider, req) => {
      metrics.rejections.inc({ provider });
      rejections.record({
        at: new Date().toISOString(),
        provider,
        path: req.url.split('?', 1)[0]!,
        remoteAddr: req.ip ?? null,
        reason: 'no signature or token',
        contentType: req.headers['content-type'] ?? null,
        bodyBytes: 0,
        userAgent: req.headers['user-agent'] ?? null,
      });
    },
  });
  // Nest logs made while a request is handled carry its request id. Bound after the body is read: the parser's
  // stream events run outside the context an earlier hook would set.
  const pino = await app.resolve(PinoLogger);
  fastify.addHook('preValidation', (req, _reply, done) => pino.runInContext(() => done(), { bindings: { reqId: req.id } }));
  registerBodyParsers(fastify, config.maxBodyBytes);
  setupOpenApi(app);
  // Errors raised before a route handler runs (parsers, limits) reach Nest's exception layer, hence
  // LedgerExceptionFilter, through the error handler Nest installs on Fastify.
  return app;
};
