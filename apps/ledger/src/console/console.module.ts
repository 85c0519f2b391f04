import { join } from 'node:path';
import { Inject, Module, type DynamicModule, type OnModuleInit } from '@nestjs/common';
import { HttpAdapterHost } from '@nestjs/core';
import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { LEDGER_CONFIG, type LedgerConfig } from '@lib/config';
import { WEBHOOK_PREFIX } from '../common/body-parser.js';
import { toErrorResponse } from '../common/ledger-exception.filter.js';
import { findConsoleAssets } from './console-assets.js';
import { ConsoleController, ConsoleSignInLimiter } from './console.controller.js';
import { CONSOLE_ASSETS } from './console.tokens.js';
import { attachSession, ConsoleSessions, DEFAULT_SESSION_OPTIONS, type ConsoleSessionOptions } from './console-sessions.js';

/**
 * The Call Console under /console: its built assets, sign-in sessions, and the request hook that turns a
 * session cookie into the API key it stands for (ApiKeyGuard reads it with sessionKeyFromCookie).
 */
@Module({})
export class ConsoleModule implements OnModuleInit {
  constructor(
    private readonly adapterHost: HttpAdapterHost,
    private readonly sessions: ConsoleSessions,
    @Inject(CONSOLE_ASSETS) private readonly assets: string | null,
  ) {}

  static forRoot(config: LedgerConfig, sessionOptions: ConsoleSessionOptions = DEFAULT_SESSION_OPTIONS, assets = findConsoleAssets()): DynamicModule {
    return {
      module: ConsoleModule,
      controllers: [ConsoleController],
      providers: [
        { provide: LEDGER_CONFIG, useValue: config },
        { provide: ConsoleSessions, useValue: new ConsoleSessions(sessionOptions) },
        { provide: CONSOLE_ASSETS, useValue: assets },
        {
          provide: ConsoleSignInLimiter,
          useValue: new ConsoleSignInLimiter({ limit: config.apiKeyFailureLimit, windowMs: config.apiKeyFailureWindowSec * 1000 }),
        },
      ],
      exports: [ConsoleSessions],
    };
  }

  onModuleInit(): void {
    const fastify = this.adapterHost.httpAdapter.getInstance<FastifyInstance>();
    // Route hooks are bound when Fastify becomes ready, so this one covers every route, those added before it too.
    fastify.addHook('onRequest', async (req: FastifyRequest, reply: FastifyReply) => {
      // Webhooks authenticate by provider signature, never by a console session.
      if (req.url.startsWith(WEBHOOK_PREFIX)) return;
      try {
        attachSession(this.sessions, req);
      } catch (err) {
        const { status, body, headers } = toErrorResponse(err);
        return reply.status(status).headers(headers).send(body);
      }
    });
    if (this.assets) {
      // Hashed file names: the browser may keep them for a year; index.html (served by the controller) is not cached.
      void fastify.register(fastifyStatic, {
        root: join(this.assets, 'assets'),
        prefix: '/console/assets/',
        decorateReply: false,
        immutable: true,
        maxAge: 365 * 24 * 3600 * 1000,
        index: false,
      });
    }
  }
}
