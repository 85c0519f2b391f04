import { applyDecorators, createParamDecorator, type ExecutionContext } from '@nestjs/common';
import { ApiBearerAuth, ApiBody, ApiConsumes, ApiOperation, ApiParam, ApiQuery, ApiResponse, ApiTags } from '@nestjs/swagger';
import type { FastifyRequest } from 'fastify';
import { z } from 'zod';
import { badRequest } from '@lib/ledger';
import { errorSchema, isPositionText, toOpenApiSchema } from './api-schema.js';

export const API_KEY_SCHEME = 'apiKey';

/** Read-your-writes, accepted by every query route (ReadYourWritesInterceptor does the waiting). */
export const minPositionParam = z
  .string()
  .refine(isPositionText, 'must be a position from an ingest receipt: digits, at most 9223372036854775807')
  .optional()
  .describe('position from an ingest receipt: answer only once every projection has applied it, on the server the route reads (else 503 after 3 s: PROJECTION.LAGGING, or READ.REPLICA_LAGGING when only the read replica is behind)');

/** A query-string schema: strict (an unknown parameter is a 400 too) and with `minPosition`. */
export const queryParams = <T extends z.ZodRawShape>(shape: T) => z.strictObject({ ...shape, minPosition: minPositionParam });

const ERROR_TEXT: Record<number, string> = {
  400: 'a parameter or the body is invalid; the message names it',
  401: 'missing or wrong credentials',
  403: 'the API key lacks the scope of this route (AUTH.FORBIDDEN_SCOPE), or the provider has no secret configured (WEBHOOK.PROVIDER_NOT_CONFIGURED)',
  404: 'not found',
  409: 'ambiguous: several providers use this call id; pass ?provider=',
  413: 'body too large',
  415: 'unsupported content type',
  429: 'too many refused signatures or API keys from this address: everything from it is refused until Retry-After seconds have passed',
  503: 'database unavailable, the read replica unavailable (READ.REPLICA_UNAVAILABLE), or minPosition not reached in time (PROJECTION.LAGGING, READ.REPLICA_LAGGING); Retry-After',
};

export interface ApiResponseSpec {
  status?: number;
  description?: string;
  schema: z.ZodType;
  /** Default application/json. */
  contentType?: string;
}

export interface ApiRouteOptions {
  summary: string;
  description?: string;
  tag: string;
  /** Default: Bearer API key. */
  auth?: 'api-key' | 'none' | 'provider-signature';
  params?: Record<string, { description: string; schema?: z.ZodType }>;
  query?: z.ZodObject;
  body?: { contentTypes: string[]; schema: z.ZodType; description?: string; required?: boolean };
  responses: ApiResponseSpec[];
  /** 401 is added for authenticated routes, 400 for routes with a query schema. */
  errors?: number[];
}

/**
 * Everything Swagger shows about one route, from the same zod schemas that validate the request, so the
 * document cannot drift from the behaviour. Usage: `@ApiRoute({...})` next to `@Get()`, and
 * `@ValidQuery(schema)` on the handler's parameter.
 */
export const ApiRoute = (o: ApiRouteOptions): MethodDecorator => {
  const decorators: MethodDecorator[] = [ApiOperation({ summary: o.summary, description: o.description }), ApiTags(o.tag)];
  const auth = o.auth ?? 'api-key';
  if (auth === 'api-key') decorators.push(ApiBearerAuth(API_KEY_SCHEME));
  for (const [name, p] of Object.entries(o.params ?? {})) {
    decorators.push(ApiParam({ name, required: true, description: p.description, schema: toOpenApiSchema(p.schema ?? z.string().min(1), 'input') as never }));
  }
  if (o.body) {
    decorators.push(ApiConsumes(...o.body.contentTypes));
    decorators.push(ApiBody({ schema: toOpenApiSchema(o.body.schema, 'input') as never, description: o.body.description, required: o.body.required ?? true }));
  }
  if (o.query) {
    for (const [name, field] of Object.entries(o.query.shape as Record<string, z.ZodType>)) {
      const { description, ...schema } = toOpenApiSchema(field, 'input');
      decorators.push(ApiQuery({ name, required: !field.safeParse(undefined).success, description: description as string | undefined, schema: schema as never }));
    }
  }
  // One status may answer in several media types (the export): they share one response object.
  const byStatus = new Map<number, { description: string[]; content: Record<string, { schema: never }> }>();
  for (const r of o.responses) {
    const status = r.status ?? 200;
    const entry = byStatus.get(status) ?? byStatus.set(status, { description: [], content: {} }).get(status)!;
    entry.description.push(r.description ?? 'OK');
    entry.content[r.contentType ?? 'application/json'] = { schema: toOpenApiSchema(r.schema) as never };
  }
  for (const [status, r] of byStatus) decorators.push(ApiResponse({ status, description: r.description.join('; '), content: r.content }));
  const errors = new Set(o.errors ?? []);
  if (auth !== 'none') errors.add(401).add(403).add(429);
  if (o.query) errors.add(400);
  const errSchema = toOpenApiSchema(errorSchema);
  for (const status of [...errors].sort()) {
    decorators.push(ApiResponse({ status, description: ERROR_TEXT[status] ?? 'error', content: { 'application/json': { schema: errSchema as never } } }));
  }
  return applyDecorators(...decorators);
};

/** Parses the query string with a zod schema; a failure is a 400 that names the parameter. */
export const parseQuery = <S extends z.ZodType>(schema: S, query: unknown): z.output<S> => {
  const parsed = schema.safeParse(query ?? {});
  if (parsed.success) return parsed.data;
  const issue = parsed.error.issues[0]!;
  if (issue.code === 'unrecognized_keys') {
    throw badRequest('QUERY.UNKNOWN_PARAMETER', `unknown query parameter ${issue.keys.map((k) => `"${k}"`).join(', ')}`);
  }
  const name = String(issue.path[0] ?? 'query');
  throw badRequest('QUERY.INVALID_PARAMETER', `invalid query parameter "${name}": ${issue.message}`);
};

const zodQuery = createParamDecorator((data: { zod: z.ZodType }, ctx: ExecutionContext) =>
  parseQuery(data.zod, ctx.switchToHttp().getRequest<FastifyRequest>().query),
);

/** `@ValidQuery(schema) query: z.output<typeof schema>`. (Wrapped: Nest takes a bare zod schema, which has `transform`, for a pipe, and `{schema}` for its own Standard Schema options.) */
export const ValidQuery = (schema: z.ZodType): ParameterDecorator => zodQuery({ zod: schema });
