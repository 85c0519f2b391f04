import type { LogLevel } from '@nestjs/common';
import { NestFactory } from '@nestjs/core';
import { FastifyAdapter, type NestFastifyApplication } from '@nestjs/platform-fastify';
import type { LedgerConfig } from '@lib/config';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Database } from '@lib/db';
import { AppModule } from './app.module.js';
import { registerBodyParsers } from './common/body-parser.js';
import { toErrorResponse } from './common/ledger-exception.filter.js';
import { setupOpenApi } from './common/openapi.setup.js';
import type { SchemaState } from './common/tokens.js';

const NEST_LEVELS: Record<LedgerConfig['logLevel'], LogLevel[] | false> = {
  silent: false,
  fatal: ['fatal'],
  error: ['fatal', 'error'],
  warn: ['fatal', 'error', 'warn'],
  info: ['fatal', 'error', 'warn', 'log'],
  debug: ['fatal', 'error', 'warn', 'log', 'debug'],
  trace: ['fatal', 'error', 'warn', 'log', 'debug', 'verbose'],
};

export interface CreateAppOptions {
  config: LedgerConfig;
  db: Database;
  /** The projector's pool when it runs as a role of its own (see AppModuleOptions). */
  projectorDb?: Database;
  schema: SchemaState;
  databaseUrl?: string | null;
  benchRoutes?: boolean;
}

/** Trust the nearest `n` proxies (Fastify's hop-count form, as a function so that its types accept it). */
const hops = (n: number) => (_address: string, hop: number) => hop < n;

/** Builds the HTTP application (not listening yet); tests and main share it. */
export const createApp = async (options: CreateAppOptions): Promise<NestFastifyApplication> => {
  const adapter = new FastifyAdapter({
    bodyLimit: options.config.maxBodyBytes,
    trustProxy: typeof options.config.trustProxy === 'number' ? hops(options.config.trustProxy) : options.config.trustProxy,
    // Errors Fastify raises before routing (a malformed percent-encoding in the path: FST_ERR_BAD_URL) skip
    // Nest's filter and were answered in Fastify's own shape; the API promises {"error": {"code", "message"}}.
    frameworkErrors: (err: Error, _req: FastifyRequest, reply: FastifyReply) => {
      const { status, body, headers } = toErrorResponse(err);
      void reply.status(status).headers(headers).send(body);
    },
  });
  const app = await NestFactory.create<NestFastifyApplication>(
    AppModule.forRoot({ config: options.config, db: options.db, projectorDb: options.projectorDb, schema: options.schema, databaseUrl: options.databaseUrl ?? null, benchRoutes: options.benchRoutes }),
    adapter,
    { bodyParser: false, logger: NEST_LEVELS[options.config.logLevel] },
  );
  const fastify = app.getHttpAdapter().getInstance();
  registerBodyParsers(fastify, options.config.maxBodyBytes);
  setupOpenApi(app);
  // Errors raised before a route handler runs (parsers, limits) reach Nest's exception layer, hence
  // LedgerExceptionFilter, through the error handler Nest installs on Fastify.
  return app;
};
