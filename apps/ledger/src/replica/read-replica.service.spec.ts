import { describe, expect, it } from 'vitest';
import { createDatabase } from '@lib/db';
import { MetricsService } from '../metrics/metrics.service.js';
import { ReadReplicaService } from './read-replica.service.js';

// Pools that are never connected: only the service's decisions are under test here (the probe and the routing
// on real servers are in libs/db/src/read-routing.int-spec.ts and test/chaos/read-replica.chaos-spec.ts).
const idle = () => createDatabase('postgres://nobody:x@127.0.0.1:1/none', 1).db;

describe('ReadReplicaService', () => {
  it('without a replica reads the primary and is not configured', () => {
    const primary = idle();
    const s = new ReadReplicaService(primary, null, { fallback: 'primary' }, new MetricsService());
    expect(s.configured).toBe(false);
    expect(s.db).toBe(primary);
    expect(s.pinned(() => s.current())).toBe('primary');
  });

  it('reads the replica before the first probe, and a lagging answer asks to retry after its lag, within 1..10 s', () => {
    const s = new ReadReplicaService(idle(), idle(), { fallback: 'unavailable' }, new MetricsService());
    expect(s.configured).toBe(true);
    expect(s.status()).toMatchObject({ state: 'unknown', reads: 'replica', fallback: 'unavailable', lagSeconds: null });
    expect(s.pinned(() => s.current())).toBe('replica');
    expect(s.retryAfterSec()).toBe(1);
  });

  it('marks the replica down when a probe cannot reach it, and then routes per the fallback', async () => {
    const metrics = new MetricsService();
    const strict = new ReadReplicaService(idle(), idle(), { fallback: 'unavailable' }, metrics);
    await strict.probe();
    expect(strict.status()).toMatchObject({ state: 'down', reads: 'unavailable', lastError: expect.any(String), checkedAt: expect.any(String) });
    expect((await metrics.replicaUp.get()).values[0]!.value).toBe(0);
    const lenient = new ReadReplicaService(idle(), idle(), { fallback: 'primary' }, new MetricsService());
    await lenient.probe();
    expect(lenient.status()).toMatchObject({ state: 'down', reads: 'primary' });
    expect(lenient.pinned(() => lenient.current())).toBe('primary');
  });
});
