import { Controller, Get, Header, UseGuards } from '@nestjs/common';
import { ApiKeyGuard } from '../common/api-key.guard.js';
import { MetricsService } from './metrics.service.js';

@Controller('metrics')
@UseGuards(ApiKeyGuard)
export class MetricsController {
  constructor(private readonly metrics: MetricsService) {}

  @Get()
  @Header('content-type', 'text/plain; version=0.0.4; charset=utf-8')
  async scrape(): Promise<string> {
    return this.metrics.registry.metrics();
  }
}
