import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Body, Controller, Delete, Get, HttpCode, Inject, Post, Req, Res } from '@nestjs/common';
import { ApiExcludeEndpoint } from '@nestjs/swagger';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { LEDGER_CONFIG, type LedgerConfig } from '@lib/config';
import { badRequest, LedgerError, rateLimited, unauthorized } from '@lib/ledger';
import { findApiKey } from '../common/api-key.guard.js';
import { ApiRoute } from '../common/api-route.decorator.js';
import { SignatureFailureLimiter } from '../webhooks/signature-failure-limiter.js';
import { CONSOLE_ASSETS } from './console.tokens.js';
import { clearedSessionCookie, ConsoleSessions, csrfRefused, sessionCookie, sessionIdFromCookie, sessionOf } from './console-sessions.js';

/** Refused console sign-ins per remote address (the API-key limits of LEDGER_API_KEY_FAILURE_*). */
export class ConsoleSignInLimiter extends SignatureFailureLimiter {}

const signInBody = z.strictObject({ apiKey: z.string().min(1).max(1000) });
const sessionSchema = z
  .object({
    csrfToken: z.string().describe('send it back as x-ledger-csrf on every state-changing request made with the session cookie'),
    expiresAt: z.iso.datetime().describe('when the session ends if it is not used before'),
  })
  .meta({ id: 'ConsoleSession' });

/**
 * A Content-Security-Policy that lets the page load only its own bundled code: no inline script, no CDN, no
 * framing. Recordings live at the providers, so audio may come from any https URL.
 */
const CSP = "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; media-src 'self' http: https: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'";

const isHttps = (req: FastifyRequest) => req.protocol === 'https';

/** Sign-in and sign-out of the console (`/console`), and its pages. The API routes accept the session cookie through ApiKeyGuard. */
@Controller('console')
export class ConsoleController {
  constructor(
    @Inject(LEDGER_CONFIG) private readonly config: LedgerConfig,
    private readonly sessions: ConsoleSessions,
    @Inject(CONSOLE_ASSETS) private readonly assets: string | null,
    private readonly signInFailures: ConsoleSignInLimiter,
  ) {}

  @Get('api/session')
  @ApiRoute({ tag: 'console', summary: 'The console session this cookie stands for (401 when none or expired)', auth: 'none', responses: [{ schema: sessionSchema }], errors: [401] })
  current(@Req() req: FastifyRequest): z.infer<typeof sessionSchema> {
    const id = sessionIdFromCookie(req);
    const session = sessionOf(req) ?? (id ? this.sessions.touch(id) : null);
    if (!session) throw new LedgerError('AUTH.SESSION_REQUIRED', 'no console session: sign in');
    return { csrfToken: session.csrf, expiresAt: new Date(this.sessions.expiresAt(session)).toISOString() };
  }

  @Post('api/session')
  @HttpCode(200)
  @ApiRoute({
    tag: 'console',
    summary: 'Sign in to the console with an API key; sets an HttpOnly, SameSite=Strict session cookie',
    description: 'The key goes in the JSON body, never in a URL. The answer carries the CSRF token the page sends back as `x-ledger-csrf`.',
    auth: 'none',
    body: { contentTypes: ['application/json'], schema: signInBody },
    responses: [{ schema: sessionSchema }],
    errors: [400, 401, 403],
  })
  signIn(@Req() req: FastifyRequest, @Body() body: unknown, @Res({ passthrough: true }) reply: FastifyReply): z.infer<typeof sessionSchema> {
    // A cross-site form cannot send JSON without a preflight, and browsers mark such requests: no sign-in CSRF.
    if (req.headers['sec-fetch-site'] === 'cross-site') throw csrfRefused('cross-site sign-in refused');
    if (!String(req.headers['content-type'] ?? '').toLowerCase().startsWith('application/json')) {
      throw new LedgerError('REQUEST.UNSUPPORTED_MEDIA_TYPE', 'send {"apiKey": "…"} as application/json');
    }
    const parsed = signInBody.safeParse(body);
    if (!parsed.success) throw badRequest('REQUEST.INVALID_BODY', 'body must be {"apiKey": "<one of LEDGER_API_KEYS>"}');
    // Sign-in is a key check like the API's: an address that keeps guessing is refused outright for the window.
    const address = req.ip ?? 'unknown';
    const wait = this.signInFailures.blockedFor(address);
    if (wait !== null) throw rateLimited(`too many refused API keys from this address; retry in ${wait} s`, wait);
    if (this.config.apiKeys.length === 0 || !findApiKey(parsed.data.apiKey, this.config.apiKeys)) {
      this.signInFailures.recordFailure(address);
      throw unauthorized('wrong API key');
    }
    const old = sessionIdFromCookie(req);
    if (old) this.sessions.delete(old);
    const session = this.sessions.create(parsed.data.apiKey);
    const expiresAt = this.sessions.expiresAt(session);
    void reply.header('set-cookie', sessionCookie(session, isHttps(req), this.sessions.cookieMaxAgeSec(session))).header('cache-control', 'no-store');
    return { csrfToken: session.csrf, expiresAt: new Date(expiresAt).toISOString() };
  }

  @Delete('api/session')
  @HttpCode(200)
  @ApiRoute({
    tag: 'console',
    summary: 'Sign out: ends the session and clears its cookie',
    description: 'With a live session cookie, the `x-ledger-csrf` header of the session is required (else 403).',
    auth: 'none',
    responses: [{ schema: z.object({ signedOut: z.literal(true) }) }],
    errors: [403],
  })
  signOut(@Req() req: FastifyRequest, @Res({ passthrough: true }) reply: FastifyReply): { signedOut: true } {
    // The CSRF check already ran in the request hook for a live session; an unknown cookie is just cleared.
    const id = sessionIdFromCookie(req);
    if (id) this.sessions.delete(id);
    void reply.header('set-cookie', clearedSessionCookie(isHttps(req)));
    return { signedOut: true };
  }

  /** The single-page app: every /console path answers index.html, and the page routes itself. */
  @Get(['', '*'])
  @ApiExcludeEndpoint()
  async page(@Res() reply: FastifyReply): Promise<void> {
    if (!this.assets) {
      void reply.status(503).send({ error: { code: 'CONSOLE.NOT_BUILT', message: 'the console is not built: run npm run build' } });
      return;
    }
    const html = await readFile(join(this.assets, 'index.html'));
    void reply
      .header('content-type', 'text/html; charset=utf-8')
      .header('cache-control', 'no-cache')
      .header('content-security-policy', CSP)
      .header('x-content-type-options', 'nosniff')
      .header('referrer-policy', 'no-referrer')
      .send(html);
  }
}
