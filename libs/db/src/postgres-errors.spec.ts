import { describe, expect, it } from 'vitest';
import { isConnectionError, isTransientError } from './postgres-errors.js';

describe('isConnectionError / isTransientError', () => {
  it('treats the timeouts the pools set as "not now" (503), like a server that is gone', () => {
    for (const code of ['57014', '55P03', '25P03', '57P05', '57P01', '08006', '53300', 'ECONNREFUSED', 'ECONNRESET']) {
      expect({ code, connection: isConnectionError({ code }) }).toEqual({ code, connection: true });
    }
    expect(isConnectionError(new Error('timeout exceeded when trying to connect'))).toBe(true);
    expect(isConnectionError(new Error('Query read timeout'))).toBe(true);
  });

  it('leaves bad statements and bad data to the caller', () => {
    for (const code of ['23505', '42501', '42P01', '22021', '22P02']) expect(isConnectionError({ code })).toBe(false);
    expect(isConnectionError(undefined)).toBe(false);
  });

  it('retries serialization failures and deadlocks as well', () => {
    expect(isTransientError({ code: '40001' })).toBe(true);
    expect(isTransientError({ code: '40P01' })).toBe(true);
    expect(isTransientError({ code: '57014' })).toBe(true);
    expect(isTransientError({ code: '23505' })).toBe(false);
  });
});
