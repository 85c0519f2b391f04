import { describe, expect, it } from 'vitest';
import { SignatureFailureLimiter } from './signature-failure-limiter.js';

const clock = (start = 1_000_000) => {
  let t = start;
  return { now: () => t, advance: (ms: number) => void (t += ms) };
};

describe('SignatureFailureLimiter', () => {
  it('blocks an address once it has used its allowance, for the rest of its window only', () => {
    const c = clock();
    const limiter = new SignatureFailureLimiter({ limit: 3, windowMs: 60_000, now: c.now });
    for (let i = 0; i < 2; i++) limiter.recordFailure('10.0.0.1');
    expect(limiter.blockedFor('10.0.0.1')).toBeNull();
    limiter.recordFailure('10.0.0.1');
    expect(limiter.blockedFor('10.0.0.1')).toBe(60);
    expect(limiter.blockedFor('10.0.0.2')).toBeNull();
    c.advance(59_001);
    expect(limiter.blockedFor('10.0.0.1')).toBe(1);
    c.advance(999);
    expect(limiter.blockedFor('10.0.0.1')).toBeNull();
    // A new window starts from zero.
    limiter.recordFailure('10.0.0.1');
    expect(limiter.blockedFor('10.0.0.1')).toBeNull();
  });

  it('counts failures in the window that the first one opened', () => {
    const c = clock();
    const limiter = new SignatureFailureLimiter({ limit: 2, windowMs: 10_000, now: c.now });
    limiter.recordFailure('a');
    c.advance(10_000);
    limiter.recordFailure('a');
    expect(limiter.blockedFor('a')).toBeNull();
    limiter.recordFailure('a');
    expect(limiter.blockedFor('a')).toBe(10);
  });

  it('is off with a limit of 0', () => {
    const limiter = new SignatureFailureLimiter({ limit: 0, windowMs: 10_000 });
    for (let i = 0; i < 100; i++) limiter.recordFailure('a');
    expect(limiter.blockedFor('a')).toBeNull();
    expect(limiter.tracked).toBe(0);
  });

  it('tracks a bounded number of addresses, dropping expired windows first, then the oldest', () => {
    const c = clock();
    const limiter = new SignatureFailureLimiter({ limit: 1, windowMs: 1_000, maxTracked: 100, now: c.now });
    for (let i = 0; i < 50; i++) limiter.recordFailure(`old-${i}`);
    c.advance(1_000);
    limiter.recordFailure('blocked');
    for (let i = 0; i < 10_000; i++) limiter.recordFailure(`flood-${i}`);
    expect(limiter.tracked).toBeLessThanOrEqual(100);
    // Under a flood of fresh addresses the oldest live entries are the ones dropped: memory wins over memory of abuse.
    expect(limiter.blockedFor('flood-9999')).toBe(1);
  });
});
