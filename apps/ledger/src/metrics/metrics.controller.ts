import { Controller, Get, Header, UseGuards } from '@nestjs/common';
import { z } from 'zod';
import { ApiKeyGuard, RequireScope } from '../common/api-key.guard.js';
import { ApiRoute } from '../common/api-route.decorator.js';
import { MetricsService } from './metrics.service.js';

@Controller('metrics')
@UseGuards(ApiKeyGuard)
@RequireScope('read')
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  @Get()
  @ApiRoute({
    tag: 'metrics',
    summary: 'Prometheus metrics',
    responses: [{ contentType: 'text/plain', schema: z.string().describe('Prometheus text exposition format 0.0.4') }],
  })
  @Header('content-type', 'text/plain; version=0.0.4; charset=utf-8')
  async scrape(): Promise<string> {
    return this.metrics.scrape();
  }
}
