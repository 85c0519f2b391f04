import { Controller, HttpCode, Post, Req } from '@nestjs/common';
import type { FastifyRequest } from 'fastify';

/** Same framework path as a webhook (parser, routing, JSON reply) minus all I/O: the benchmarks' ceiling. */
@Controller('internal/noop')
export class NoopController {
  @Post()
  @HttpCode(200)
  noop(@Req() req: FastifyRequest): { ok: true; bytes: number } {
    return { ok: true, bytes: Buffer.isBuffer(req.body) ? req.body.length : 0 };
  }
}
