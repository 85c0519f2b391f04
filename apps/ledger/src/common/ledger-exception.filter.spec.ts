import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ERROR_CODES, LedgerError, rateLimited, unauthorized, unavailable } from '@lib/ledger';
import { HTTP_STATUS_OF, toErrorResponse } from './ledger-exception.filter.js';

const sources = (dir: string): string[] =>
  readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sources(path);
    return path.endsWith('.ts') && !/\.(int-|e2e-)?spec\.ts$/.test(path) ? [path] : [];
  });

describe('error codes', () => {
  it('every listed code has an HTTP status in the table, and the table holds no other code', () => {
    expect(Object.keys(HTTP_STATUS_OF).sort()).toEqual([...ERROR_CODES].sort());
    for (const code of ERROR_CODES) expect(HTTP_STATUS_OF[code], code).toBeGreaterThanOrEqual(400);
  });

  it('no source file invents a code that is not in the list', () => {
    const known = new Set<string>(ERROR_CODES);
    const used = new Set<string>();
    for (const file of [...sources('apps'), ...sources('libs')]) {
      for (const m of readFileSync(file, 'utf8').matchAll(/'((?:WEBHOOK|REQUEST|AUTH|QUERY|ROUTE|CALL|PROJECTION|IMPORT|SERVICE|HTTP)\.[A-Z_]+)'/g)) used.add(m[1]!);
    }
    expect(used.size).toBeGreaterThan(10);
    expect([...used].filter((c) => !known.has(c))).toEqual([]);
  });

  it('domain errors carry no HTTP: no status and no headers, only a code, a message and data', () => {
    const err = unavailable('database busy', 2);
    expect(err).toBeInstanceOf(LedgerError);
    expect(err).not.toHaveProperty('status');
    expect(err).not.toHaveProperty('headers');
    expect(err).toMatchObject({ code: 'SERVICE.UNAVAILABLE', message: 'database busy', retryAfterSec: 2 });
  });

  it('the filter turns the retry hint into Retry-After and the code into the status', () => {
    expect(toErrorResponse(unavailable('busy', 2))).toEqual({
      status: 503,
      body: { error: { code: 'SERVICE.UNAVAILABLE', message: 'busy' } },
      headers: { 'retry-after': '2' },
    });
    expect(toErrorResponse(rateLimited('slow down', 30))).toMatchObject({ status: 429, headers: { 'retry-after': '30' } });
    expect(toErrorResponse(unauthorized())).toMatchObject({ status: 401, headers: { 'www-authenticate': 'Bearer' } });
    const ambiguous = new LedgerError('CALL.AMBIGUOUS', 'pass ?provider=', { details: { providers: ['a', 'b'] } });
    expect(toErrorResponse(ambiguous)).toEqual({
      status: 409,
      body: { error: { code: 'CALL.AMBIGUOUS', message: 'pass ?provider=', details: { providers: ['a', 'b'] } } },
      headers: {},
    });
  });

  it('an unknown error is a 500 without details', () => {
    expect(toErrorResponse(new Error('secret stack'))).toEqual({
      status: 500,
      body: { error: { code: 'INTERNAL', message: 'internal error; the incident was logged' } },
      headers: {},
    });
  });
});
