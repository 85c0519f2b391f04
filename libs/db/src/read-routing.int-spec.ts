import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createTestDatabase, type TestDatabase } from '@lib/testing';
import { createDatabase, type DatabaseHandle } from './database.js';
import { freePort } from './embedded-postgres.js';
import { createReadRouting, type ReadRoutingPolicy, type ReadTarget } from './read-routing.js';

/**
 * The routing driver on real servers: two test databases stand for the primary and the replica (which one
 * answered is `current_database()`), and a port nobody listens on for a replica that is down. The standby proper
 * (replay, lag) is test/chaos/read-replica.chaos-spec.ts.
 */
let primary: TestDatabase;
let replica: TestDatabase;
const extra: DatabaseHandle[] = [];
beforeAll(async () => {
  [primary, replica] = await Promise.all([createTestDatabase(4), createTestDatabase(4)]);
});
afterAll(async () => {
  await Promise.allSettled(extra.map((h) => h.db.destroy()));
  await Promise.allSettled([primary.drop(), replica.drop()]);
});

class Policy implements ReadRoutingPolicy {
  down = false;
  failures: unknown[] = [];
  reads: ReadTarget[] = [];
  constructor(readonly fallsBack = true) {}
  choose(): ReadTarget | 'unavailable' {
    return !this.down ? 'replica' : this.fallsBack ? 'primary' : 'unavailable';
  }
  replicaFailed(err: unknown): void {
    this.down = true;
    this.failures.push(err);
  }
  unavailable(): Error {
    return Object.assign(new Error('replica unavailable'), { code: 'TEST_UNAVAILABLE' });
  }
  onRead(target: ReadTarget): void {
    this.reads.push(target);
  }
}

const where = async (db: ReturnType<typeof createReadRouting>['db']) => (await sql<{ d: string }>`SELECT current_database() AS d`.execute(db)).rows[0]!.d;
const dbName = (t: TestDatabase) => new URL(t.url).pathname.slice(1);

describe('read routing', () => {
  it('reads the replica while it is up, and keeps a pinned request there when the choice changes under it', async () => {
    const policy = new Policy();
    const routing = createReadRouting(primary.db, replica.db, policy);
    expect(await where(routing.db)).toBe(dbName(replica));
    await routing.pinned(async (target) => {
      expect(target).toBe('replica');
      policy.down = true;
      // Still the replica: the request's check and its reads see one server.
      expect(await where(routing.db)).toBe(dbName(replica));
      expect(routing.current()).toBe('replica');
    });
    // A new request follows the new choice.
    expect(await where(routing.db)).toBe(dbName(primary));
    expect(policy.reads).toEqual(['replica', 'replica', 'primary']);
  });

  it('sends a read to the primary when the replica refuses connections, and marks it down', async () => {
    const dead = createDatabase(`postgres://nobody:x@127.0.0.1:${await freePort()}/none`, 2, { connectMs: 1000 });
    extra.push(dead);
    const policy = new Policy();
    const routing = createReadRouting(primary.db, dead.db, policy);
    await routing.pinned(async () => {
      expect(await where(routing.db)).toBe(dbName(primary));
      // The rest of the request stays on the primary.
      expect(routing.current()).toBe('primary');
    });
    expect(policy.down).toBe(true);
    expect((policy.failures[0] as { code?: string }).code).toBe('ECONNREFUSED');
  });

  it('refuses the read with the policy error when falling back is off', async () => {
    const dead = createDatabase(`postgres://nobody:x@127.0.0.1:${await freePort()}/none`, 2, { connectMs: 1000 });
    extra.push(dead);
    const policy = new Policy(false);
    const routing = createReadRouting(primary.db, dead.db, policy);
    await expect(where(routing.db)).rejects.toMatchObject({ code: 'TEST_UNAVAILABLE' });
    // Down now: the next read does not even try the replica.
    await expect(where(routing.db)).rejects.toMatchObject({ code: 'TEST_UNAVAILABLE' });
    expect(policy.failures).toHaveLength(1);
  });

  it('answers a statement from the primary when its replica connection is terminated under it', async () => {
    const own = createDatabase(replica.url, 2, { applicationName: 'routing-test-replica' });
    extra.push(own);
    const policy = new Policy();
    const routing = createReadRouting(primary.db, own.db, policy);
    // Sleeps on the replica only: there it is killed (what a standby going away looks like to its client: 57P01),
    // and the primary, which answers at once, must then have run it.
    const answer = sql<{ d: string }>`SELECT current_database() AS d, pg_sleep(CASE WHEN current_database() = ${dbName(replica)} THEN 30 ELSE 0 END) IS NULL AS slept`.execute(routing.db);
    const asleep = sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'routing-test-replica' AND wait_event = 'PgSleep'`;
    await expect.poll(async () => (await asleep.execute(replica.db)).rows[0]!.n, { timeout: 10_000, interval: 20 }).toBe(1);
    await sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'routing-test-replica' AND wait_event = 'PgSleep'`.execute(replica.db);
    expect((await answer).rows[0]!.d).toBe(dbName(primary));
    expect(policy.down).toBe(true);
    expect(policy.reads).toEqual(['replica', 'primary']);
  });

  it('refuses that statement with the policy error when falling back is off (the replica is down, not the database)', async () => {
    const own = createDatabase(replica.url, 2, { applicationName: 'routing-test-strict' });
    extra.push(own);
    const policy = new Policy(false);
    const routing = createReadRouting(primary.db, own.db, policy);
    const answer = sql`SELECT pg_sleep(30)`.execute(routing.db);
    const asleep = sql<{ n: number }>`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'routing-test-strict' AND wait_event = 'PgSleep'`;
    await expect.poll(async () => (await asleep.execute(replica.db)).rows[0]!.n, { timeout: 10_000, interval: 20 }).toBe(1);
    await sql`SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'routing-test-strict' AND wait_event = 'PgSleep'`.execute(replica.db);
    await expect(answer).rejects.toMatchObject({ code: 'TEST_UNAVAILABLE' });
    expect(policy.down).toBe(true);
    expect(policy.reads).toEqual(['replica']);
  });
});
