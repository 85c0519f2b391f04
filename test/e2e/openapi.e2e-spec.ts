import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormatsModule from 'ajv-formats';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Projector } from '@lib/projections';
import { API_KEY, SECRETS, startTestApp, type TestApp } from '../support/test-app.js';
import { freeclimbRequest } from '../support/signing.js';

type Operation = { parameters?: { name: string; in: string; required?: boolean; schema?: { enum?: string[] } }[]; security?: unknown[]; responses: Record<string, { content?: Record<string, { schema: object }> }> };
type Doc = { openapi: string; paths: Record<string, Record<string, Operation>>; components: { schemas: Record<string, object> } };

const addFormats = addFormatsModule as unknown as (ajv: Ajv2020) => void;
const METHODS = ['get', 'post', 'put', 'patch', 'delete'];
const ACC = 'ACe511f7e60a7aaec1435ac251c24f6bd698d8dd14';
const CALL = 'CA-openapi-root';
const fc = (o: Record<string, unknown>) => JSON.stringify({ accountId: ACC, conferenceId: null, queueId: null, ...o });

/** `/v1/calls/:callId` and `/v1/calls/{callId}` and Fastify's `*` all come down to one shape. */
const shape = (path: string) => path.replace(/\{[^}]+\}|:[A-Za-z0-9_]+|\*/g, '{}').replace(/\/$/, '') || '/';

let t: TestApp;
let doc: Doc;
const served: { method: string; url: string }[] = [];
const exercised = new Set<string>();

/** Values for path parameters and required query parameters without an enum; routes added later usually need none. */
const PARAM_VALUES: Record<string, string> = { callId: CALL, provider: 'freeclimb', path: 'status' };

/** Bodies for the routes that take one (GET routes need nothing here). */
const postRequest = (path: string): { url: string; headers: Record<string, string>; payload?: string | Buffer } | null => {
  const auth = { authorization: `Bearer ${API_KEY}` };
  switch (path) {
    case '/v1/webhooks/{provider}':
      return freeclimbRequest(fc({ requestType: 'inboundCall', callId: 'CA-openapi-2', parentCallId: null, from: '+1', to: '+2', callStatus: 'ringing', direction: 'inbound' }));
    case '/v1/webhooks/{provider}/{path}':
      return freeclimbRequest(fc({ requestType: 'inboundCall', callId: 'CA-openapi-3', parentCallId: null, from: '+1', to: '+2', callStatus: 'ringing', direction: 'inbound' }), '/status');
    // No app URL is configured in this app: the signed delivery is refused with a documented 404.
    case '/v1/tee/{provider}':
    case '/v1/tee/{provider}/{path}': {
      const r = freeclimbRequest(fc({ requestType: 'inboundCall', callId: 'CA-openapi-tee', parentCallId: null, from: '+1', to: '+2', callStatus: 'ringing', direction: 'inbound' }), path.endsWith('{path}') ? '/voice' : '');
      return { ...r, url: r.url.replace('/v1/webhooks/', '/v1/tee/') };
    }
    case '/v1/import':
      return {
        url: path,
        headers: { ...auth, 'content-type': 'application/x-ndjson' },
        payload: `${JSON.stringify({ provider: 'freeclimb', receivedAt: '2026-01-05T14:00:00Z', contentType: 'application/json', body: fc({ requestType: 'inboundCall', callId: 'CA-openapi-4', parentCallId: null, from: '+1', to: '+2', callStatus: 'ringing', direction: 'inbound' }) })}\n{bad\n`,
      };
    case '/v1/admin/projections/rebuild':
      return { url: path, headers: { ...auth, 'content-type': 'application/json' }, payload: '{"name":"no-such-projection"}' };
    // No LEDGER_RETENTION in this app: a retention run does nothing and says so.
    case '/v1/admin/checkpoints':
    case '/v1/admin/retention':
      return { url: path, headers: auth };
    case '/v1/admin/erasures':
      return { url: path, headers: { ...auth, 'content-type': 'application/json' }, payload: JSON.stringify({ number: '+19995550000', reason: 'openapi sample' }) };
    case '/console/api/session':
      return { url: path, headers: { 'content-type': 'application/json' }, payload: JSON.stringify({ apiKey: API_KEY }) };
    case '/internal/noop':
      return { url: path, headers: { 'content-type': 'application/json' }, payload: '{}' };
    default:
      return null;
  }
};

const ajv = new Ajv2020({ strict: false, allErrors: true });
addFormats(ajv);

/** Checks a real response against the document: its status is documented, and its body matches that media type's schema. */
const expectDocumented = (method: string, path: string, res: { statusCode: number; headers: Record<string, unknown>; body: string }) => {
  const op = doc.paths[path]![method]!;
  const response = op.responses[String(res.statusCode)];
  expect(response, `${method.toUpperCase()} ${path} answered ${res.statusCode}, which is not documented: ${res.body.slice(0, 300)}`).toBeDefined();
  const type = String(res.headers['content-type'] ?? '').split(';')[0]!.trim();
  const media = response!.content?.[type];
  expect(media, `${method.toUpperCase()} ${path} ${res.statusCode} answered ${type}, documented: ${Object.keys(response!.content ?? {})}`).toBeDefined();
  const validate = ajv.compile({ ...media!.schema, $id: `https://ledger.local/op/${exercised.size}/${Math.random().toString(36).slice(2)}` });
  const bodies = type === 'application/json' ? [JSON.parse(res.body)] : type === 'application/x-ndjson' ? res.body.trimEnd().split('\n').filter(Boolean).map((l) => JSON.parse(l)) : [res.body];
  for (const body of bodies) expect(validate(body), `${method.toUpperCase()} ${path} ${res.statusCode}: ${ajv.errorsText(validate.errors)}`).toBe(true);
  exercised.add(`${method} ${path}`);
};

beforeAll(async () => {
  t = await startTestApp(SECRETS, { onRoute: (r) => void (Array.isArray(r.method) ? r.method : [r.method]).forEach((m) => served.push({ method: m.toLowerCase(), url: r.url })) });
  const projector = t.app.get(Projector);
  while ((await projector.status()).length === 0) await new Promise((r) => setTimeout(r, 20));
  const res = await t.app.inject({ method: 'POST', ...freeclimbRequest(fc({ requestType: 'inboundCall', callId: CALL, parentCallId: null, from: '+1', to: '+2', callStatus: 'ringing', direction: 'inbound' })) });
  expect(res.statusCode).toBe(200);
  if (!(await projector.waitFor(res.json().position, 10_000))) throw new Error('projections did not catch up');
  const docs = await t.app.inject({ method: 'GET', url: '/docs-json' });
  expect(docs.statusCode).toBe(200);
  doc = docs.json() as Doc;
  // Refs point at the document's components; ajv sees them as the $defs of one schema resource.
  const rewrite = (n: unknown): unknown =>
    Array.isArray(n) ? n.map(rewrite) : n && typeof n === 'object' ? Object.fromEntries(Object.entries(n).map(([k, v]) => [k, k === '$ref' && typeof v === 'string' ? v.replace('#/components/schemas/', 'https://ledger.local/openapi#/$defs/') : rewrite(v)])) : n;
  const resolved = rewrite(doc) as Doc;
  ajv.addSchema({ $id: 'https://ledger.local/openapi', $defs: resolved.components.schemas });
  doc = resolved;
});
afterAll(async () => t.close());

describe('OpenAPI document', () => {
  it('is OpenAPI 3.1 at /docs-json, with a UI at /docs, neither needing an API key', async () => {
    expect(doc.openapi).toBe('3.1.0');
    const ui = await t.app.inject({ method: 'GET', url: '/docs' });
    expect(ui.statusCode).toBe(200);
    expect(ui.headers['content-type']).toContain('text/html');
  });

  it('documents every route the app serves, and nothing it does not', () => {
    // The console's pages and bundled assets are the web app, not API operations.
    const routes = served.filter((r) => r.method !== 'head' && r.method !== 'options' && !/^\/docs([-/]|$)/.test(r.url) && !/^\/console(\/\*|\/assets\/.*)?$/.test(r.url));
    expect(routes.length).toBeGreaterThan(10);
    const documented = new Set(Object.entries(doc.paths).flatMap(([p, item]) => Object.keys(item).filter((m) => METHODS.includes(m)).map((m) => `${m} ${shape(p)}`)));
    const servedSet = new Set(routes.map((r) => `${r.method} ${shape(r.url)}`));
    expect([...servedSet].filter((r) => !documented.has(r))).toEqual([]);
    expect([...documented].filter((r) => !servedSet.has(r))).toEqual([]);
  });

  it('files every operation under exactly one tag, and no tag twice in another spelling (one webhooks, one admin)', () => {
    const tags = new Set<string>();
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const method of METHODS) {
        const op = item[method] as (Operation & { tags?: string[] }) | undefined;
        if (!op) continue;
        expect(op.tags, `${method} ${path}`).toHaveLength(1);
        tags.add(op.tags![0]!);
      }
    }
    const lower = [...tags].map((t) => t.toLowerCase());
    expect(new Set(lower).size).toBe(tags.size);
    expect([...tags].filter((t) => t !== t.toLowerCase())).toEqual([]);
    expect(tags).toContain('webhooks');
    expect(tags).toContain('admin');
    const declared = ((doc as unknown as { tags?: { name: string }[] }).tags ?? []).map((t) => t.name);
    expect(new Set(declared.map((t) => t.toLowerCase())).size).toBe(declared.length);
  });

  it('declares a response schema for every operation and status, and every parameter with a schema', () => {
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        expect(Object.keys(op.responses).length, `${method} ${path}`).toBeGreaterThan(0);
        for (const [status, r] of Object.entries(op.responses)) {
          expect(Object.keys(r.content ?? {}).length, `${method} ${path} ${status}`).toBeGreaterThan(0);
        }
        for (const p of op.parameters ?? []) expect(p.schema, `${method} ${path} ${p.name}`).toBeDefined();
        for (const name of path.match(/\{[^}]+\}/g) ?? []) expect(op.parameters?.some((p) => p.in === 'path' && `{${p.name}}` === name), `${path} ${name}`).toBe(true);
      }
    }
  });

  it('matches the real responses of every operation, with and without credentials', async () => {
    for (const [path, item] of Object.entries(doc.paths)) {
      for (const [method, op] of Object.entries(item)) {
        const posted = method === 'get' ? null : postRequest(path);
        if (method !== 'get') expect(posted, `no sample request for ${method.toUpperCase()} ${path}: add one to postRequest`).not.toBeNull();
        let url = posted?.url ?? path.replace(/\{([^}]+)\}/g, (_, name: string) => encodeURIComponent(PARAM_VALUES[name] ?? 'x'));
        if (!posted) {
          const required = (op.parameters ?? []).filter((p) => p.in === 'query' && p.required);
          if (required.length) url += `?${required.map((p) => `${p.name}=${encodeURIComponent(p.schema?.enum?.[0] ?? PARAM_VALUES[p.name] ?? 'x')}`).join('&')}`;
        }
        const headers = posted?.headers ?? (op.security?.length ? { authorization: `Bearer ${API_KEY}` } : {});
        const res = await t.app.inject({ method: method.toUpperCase() as 'GET', url, headers, payload: posted?.payload });
        expect(res.statusCode, `${method.toUpperCase()} ${url}: ${res.body.slice(0, 300)}`).toBeLessThan(500);
        expectDocumented(method, path, res);
        if (op.security?.length) {
          const { authorization: _a, ...anonymous } = headers as Record<string, string>;
          expectDocumented(method, path, await t.app.inject({ method: method.toUpperCase() as 'GET', url, headers: anonymous, payload: posted?.payload }));
        }
      }
    }
    const all = Object.entries(doc.paths).flatMap(([p, item]) => Object.keys(item).map((m) => `${m} ${p}`));
    expect(all.filter((o) => !exercised.has(o))).toEqual([]);
  });

  it('matches documented errors: a bad parameter, an unknown call, and the NDJSON export line by line', async () => {
    const auth = { authorization: `Bearer ${API_KEY}` };
    expectDocumented('get', '/v1/calls', await t.app.inject({ method: 'GET', url: '/v1/calls?limit=-1', headers: auth }));
    expectDocumented('get', '/v1/calls/{callId}', await t.app.inject({ method: 'GET', url: '/v1/calls/CA-unknown', headers: auth }));
    expectDocumented('get', '/v1/calls/{callId}/tree', await t.app.inject({ method: 'GET', url: '/v1/calls/CA-unknown/tree', headers: auth }));
    expectDocumented('get', '/v1/export/calls', await t.app.inject({ method: 'GET', url: '/v1/export/calls?format=ndjson', headers: auth }));
  });
});
