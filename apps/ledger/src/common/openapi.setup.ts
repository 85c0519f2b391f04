import type { INestApplication } from '@nestjs/common';
import { DocumentBuilder, SwaggerModule, type OpenAPIObject } from '@nestjs/swagger';
import { API_KEY_SCHEME } from './api-route.decorator.js';
import { componentSchemas } from './api-schema.js';

export const DOCS_PATH = 'docs';
export const DOCS_JSON_PATH = 'docs-json';

/**
 * The OpenAPI 3.1 document of every route, built from the controllers' decorators (whose schemas are the zod
 * schemas that validate the requests), served at /docs-json with a UI at /docs. Neither needs an API key.
 */
export const setupOpenApi = (app: INestApplication): OpenAPIObject => {
  const config = new DocumentBuilder()
    .setTitle('Call Ledger')
    .setDescription(
      'Event-sourced ledger of CPaaS voice webhooks: verbatim receipts, hash-chained call-leg events, projected call legs, ' +
        'trees and recordings. Errors are always `{"error": {"code", "message"}}`. Times are ISO-8601 UTC, durations are ' +
        'seconds, positions are decimal strings. Every query route takes `minPosition` (read-your-writes).',
    )
    .setVersion('1')
    .setOpenAPIVersion('3.1.0')
    .addBearerAuth({ type: 'http', scheme: 'bearer', description: 'one of LEDGER_API_KEYS, with the scope of the route: read (queries, /metrics), import (POST /v1/import), admin (/v1/admin/*); else 403 AUTH.FORBIDDEN_SCOPE' }, API_KEY_SCHEME)
    .build();
  // Every route names its tag (apiRoute); the controller-name tags Nest adds by default ("Webhooks" beside
  // "webhooks") would list each operation twice.
  const document = SwaggerModule.createDocument(app, config, { autoTagControllers: false });
  document.components = { ...document.components, schemas: { ...document.components?.schemas, ...(componentSchemas as Record<string, object>) } };
  alignPathParams(document);
  SwaggerModule.setup(DOCS_PATH, app, document, { jsonDocumentUrl: DOCS_JSON_PATH, raw: ['json'] });
  return document;
};

/**
 * One handler can serve several paths (the webhook route with and without a sub-path), and a path parameter
 * the explorer cannot see (Fastify's `*`) would go undeclared: each operation gets exactly its template's parameters.
 */
const alignPathParams = (document: OpenAPIObject): void => {
  for (const [path, item] of Object.entries(document.paths)) {
    const names = [...path.matchAll(/\{([^}]+)\}/g)].map((m) => m[1]!);
    for (const method of ['get', 'put', 'post', 'delete', 'patch'] as const) {
      const op = item[method];
      if (!op) continue;
      const params = (op.parameters ?? []) as { in?: string; name?: string }[];
      const kept = params.filter((p) => p.in !== 'path' || names.includes(p.name!));
      for (const name of names) {
        if (!kept.some((p) => p.in === 'path' && p.name === name)) kept.push({ name, in: 'path', required: true, schema: { type: 'string' } } as never);
      }
      op.parameters = kept as never;
    }
  }
};
