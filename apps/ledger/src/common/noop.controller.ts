import { Controller, HttpCode, Post, Req } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ApiRoute } from './api-route.decorator.js';

/** Same framework path as a webhook (parser, routing, JSON reply) minus all I/O: the benchmarks' ceiling. */
@Controller('internal/noop')
export class NoopController {
  @Post()
  @HttpCode(200)
  @ApiRoute({
    tag: 'internal',
    summary: 'Benchmark baseline (only with bench routes on): same framework path as a webhook, no I/O',
    auth: 'none',
    body: { contentTypes: ['application/json'], schema: z.string(), required: false },
    responses: [{ schema: z.object({ ok: z.literal(true), bytes: z.number().int() }) }],
  })
  noop(@Req() req: FastifyRequest): { ok: true; bytes: number } {
    return { ok: true, bytes: Buffer.isBuffer(req.body) ? req.body.length : 0 };
  }
}
