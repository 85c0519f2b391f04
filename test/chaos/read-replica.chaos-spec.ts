import type { NestFastifyApplication } from '@nestjs/platform-fastify';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '@lib/config';
import { APP_TIMEOUTS, BACKGROUND_TIMEOUTS, createDatabase, type DatabaseHandle } from '@lib/db';
import { Projector } from '@lib/projections';
import { createApp } from '../../apps/ledger/src/app.factory.js';
import { MetricsService } from '../../apps/ledger/src/metrics/metrics.service.js';
import { freeclimbRequest } from '../support/signing.js';
import { API_KEYS_ENV, READ_KEY, SECRETS } from '../support/test-app.js';
import { startPrimaryAndStandby, type PrimaryAndStandby } from './support/streaming-standby.js';

/**
 * DATABASE_READ_URL against a real streaming standby: a primary and a standby started from the embedded
 * PostgreSQL binaries (base backup with pg_backup_start/pg_backup_stop), the service in-process on both. The
 * standby is paused (pg_wal_replay_pause) to lag, and killed to be down.
 */
let servers: PrimaryAndStandby;
const pools: DatabaseHandle[] = [];
const apps: NestFastifyApplication[] = [];

const startService = async (env: Record<string, string> = {}, withReplica = true): Promise<NestFastifyApplication> => {
  const config = loadConfig({
    ...SECRETS,
    LEDGER_API_KEYS: API_KEYS_ENV,
    LEDGER_PUBLIC_URL: 'https://ledger.example.com',
    LOG_LEVEL: 'silent',
    LEDGER_CHECKPOINT_INTERVAL_SEC: '0',
    DATABASE_URL: servers.primaryUrl('app'),
    ...(withReplica ? { DATABASE_READ_URL: servers.standby.appUrl } : {}),
    ...env,
  });
  // As database.runtime.ts makes them: the replica's pool has the request pool's size and timeouts.
  const app = createDatabase(config.databaseUrl!, config.poolSize, APP_TIMEOUTS);
  const projector = createDatabase(servers.primaryUrl('projector'), 4, BACKGROUND_TIMEOUTS);
  const replica = withReplica ? createDatabase(config.readDatabaseUrl!, config.poolSize, APP_TIMEOUTS) : null;
  pools.push(app, projector, ...(replica ? [replica] : []));
  const service = await createApp({
    config,
    db: app.db,
    projectorDb: projector.db,
    replicaDb: replica?.db,
    replicaProbeMs: 100,
    schema: { migrated: true, lastError: null },
    databaseUrl: servers.primaryUrl('projector'),
  });
  await service.init();
  await service.getHttpAdapter().getInstance().ready();
  apps.push(service);
  return service;
};

beforeAll(async () => {
  servers = await startPrimaryAndStandby();
}, 120_000);

afterAll(async () => {
  for (const app of apps) await app.close();
  await Promise.allSettled(pools.map((p) => p.db.destroy()));
  await servers?.stop();
});

const auth = { authorization: `Bearer ${READ_KEY}` };
const ACC = 'ACe511f7e60a7aaec1435ac251c24f6bd698d8dd14';
const callId = (n: number) => `CA${String(n).padStart(40, '0')}`;

const deliver = async (app: NestFastifyApplication, n: number): Promise<string> => {
  const r = freeclimbRequest(
    JSON.stringify({ accountId: ACC, conferenceId: null, queueId: null, requestType: 'inboundCall', callId: callId(n), parentCallId: null, from: '+13125550147', to: '+13125550100', callStatus: 'ringing', direction: 'inbound' }),
  );
  const res = await app.inject({ method: 'POST', url: r.url, headers: r.headers, payload: r.payload });
  expect(res.statusCode).toBe(200);
  return (res.json() as { position: string }).position;
};

const getCall = (app: NestFastifyApplication, n: number, minPosition?: string) =>
  app.inject({ method: 'GET', url: `/v1/calls/${callId(n)}${minPosition ? `?minPosition=${minPosition}` : ''}`, headers: auth });

const replicaHealth = async (app: NestFastifyApplication) => {
  const res = await app.inject({ method: 'GET', url: '/health' });
  return { status: res.statusCode, replica: (res.json() as { details: Record<string, Record<string, unknown>> }).details.readReplica! };
};

const readsOn = async (app: NestFastifyApplication, server: 'replica' | 'primary'): Promise<number> =>
  (await app.get(MetricsService).readQueries.get()).values.find((v) => v.labels.server === server)?.value ?? 0;

const onStandby = async <T extends pg.QueryResultRow>(text: string): Promise<T[]> => {
  const client = new pg.Client({ connectionString: servers.standby.ownerUrl });
  await client.connect();
  try {
    return (await client.query<T>(text)).rows;
  } finally {
    await client.end();
  }
};

describe('reads from a streaming replica (DATABASE_READ_URL)', () => {
  let app: NestFastifyApplication;

  it('serves the query routes from the standby, and minPosition waits for its replay', async () => {
    app = await startService();
    await expect.poll(async () => (await app.get(Projector).status()).length, { timeout: 10_000, interval: 20 }).toBeGreaterThan(0);
    await expect.poll(async () => (await replicaHealth(app)).replica.state, { timeout: 10_000, interval: 50 }).toBe('up');

    const first = await deliver(app, 1);
    const shown = await getCall(app, 1, first);
    expect(shown.statusCode, shown.body).toBe(200);
    expect(shown.json()).toMatchObject({ callId: callId(1) });
    expect(await readsOn(app, 'replica')).toBeGreaterThan(0);

    // Replay paused: what the primary projects stays invisible on the standby, so a plain read (no minPosition)
    // that does not show it was served by the standby.
    await onStandby('SELECT pg_wal_replay_pause()');
    await expect.poll(async () => (await onStandby<{ s: string }>('SELECT pg_get_wal_replay_pause_state() AS s'))[0]!.s, { timeout: 10_000 }).toBe('paused');
    const second = await deliver(app, 2);
    expect(await app.get(Projector).waitFor(second, 10_000)).toBe(true);
    expect((await getCall(app, 2)).statusCode).toBe(404);
    // The list and the export read the standby too.
    const listed = await app.inject({ method: 'GET', url: '/v1/calls?limit=50', headers: auth });
    expect((listed.json() as { data: { callId: string }[] }).data.map((l) => l.callId)).toEqual([callId(1)]);
    const exported = await app.inject({ method: 'GET', url: '/v1/export/calls?format=ndjson', headers: auth });
    expect(exported.statusCode).toBe(200);
    expect(exported.body.trim().split('\n').map((line) => (JSON.parse(line) as { callId: string }).callId)).toEqual([callId(1)]);

    // minPosition waits on the standby: the request is in flight (it has polled the standby's checkpoint since it
    // started) when replay resumes, and then answers with the call.
    const before = await readsOn(app, 'replica');
    const waiting = getCall(app, 2, second);
    await expect.poll(async () => (await readsOn(app, 'replica')) - before, { timeout: 10_000, interval: 10 }).toBeGreaterThanOrEqual(3);
    await onStandby('SELECT pg_wal_replay_resume()');
    const res = await waiting;
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ callId: callId(2) });
  }, 60_000);

  it('answers 503 READ.REPLICA_LAGGING with Retry-After when the standby lags past the wait, and reports the lag', async () => {
    await onStandby('SELECT pg_wal_replay_pause()');
    await expect.poll(async () => (await onStandby<{ s: string }>('SELECT pg_get_wal_replay_pause_state() AS s'))[0]!.s, { timeout: 10_000 }).toBe('paused');
    const third = await deliver(app, 3);
    expect(await app.get(Projector).waitFor(third, 10_000)).toBe(true);

    const res = await getCall(app, 3, third);
    expect(res.statusCode).toBe(503);
    expect(res.json().error.code).toBe('READ.REPLICA_LAGGING');
    expect(Number(res.headers['retry-after'])).toBeGreaterThanOrEqual(1);

    await expect.poll(async () => (await replicaHealth(app)).replica, { timeout: 10_000, interval: 50 }).toMatchObject({ state: 'up', reads: 'replica', replayPaused: true, lagBytes: expect.any(Number) });
    const health = await replicaHealth(app);
    expect(health.status).toBe(200);
    expect(health.replica.lagBytes).toBeGreaterThan(0);
    const metrics = await app.get(MetricsService).registry.metrics();
    expect(metrics).toMatch(/ledger_read_replica_lag_bytes [1-9]/);

    await onStandby('SELECT pg_wal_replay_resume()');
    expect((await getCall(app, 3, third)).statusCode).toBe(200);
    await expect.poll(async () => (await replicaHealth(app)).replica.lagBytes, { timeout: 10_000, interval: 50 }).toBe(0);
  }, 60_000);

  it('falls back to the primary while the standby is down (503 READ.REPLICA_UNAVAILABLE when told not to), and returns to it', async () => {
    const strict = await startService({ LEDGER_READ_FALLBACK: 'unavailable' });
    await expect.poll(async () => (await replicaHealth(strict)).replica.state, { timeout: 10_000, interval: 50 }).toBe('up');
    await servers.standby.kill();

    // No wait for a probe: the first read after the kill already falls back (a refused connection, or one that
    // dies under the statement).
    const primaryBefore = await readsOn(app, 'primary');
    const old = await getCall(app, 1);
    expect(old.statusCode).toBe(200);
    expect(await readsOn(app, 'primary')).toBeGreaterThan(primaryBefore);
    const fourth = await deliver(app, 4);
    expect((await getCall(app, 4, fourth)).statusCode).toBe(200);
    const health = await replicaHealth(app);
    expect(health.status).toBe(200);
    expect(health.replica).toMatchObject({ state: 'down', reads: 'primary', fallback: 'primary' });

    const refused = await getCall(strict, 1);
    expect(refused.statusCode).toBe(503);
    expect(refused.json().error.code).toBe('READ.REPLICA_UNAVAILABLE');
    expect(refused.headers['retry-after']).toBe('1');
    expect((await replicaHealth(strict)).replica).toMatchObject({ state: 'down', reads: 'unavailable' });
    // Ingest does not need the replica.
    await deliver(strict, 5);

    await servers.standby.start();
    await expect.poll(async () => (await replicaHealth(app)).replica.state, { timeout: 20_000, interval: 50 }).toBe('up');
    const replicaBefore = await readsOn(app, 'replica');
    const back = await getCall(app, 4, fourth);
    expect(back.statusCode).toBe(200);
    expect(await readsOn(app, 'replica')).toBeGreaterThan(replicaBefore);
    await expect.poll(async () => (await getCall(strict, 5)).statusCode, { timeout: 20_000, interval: 50 }).toBe(200);
  }, 60_000);

  it('prints read-your-writes through the standby beside the primary (a figure, not an assertion)', async () => {
    // Two services on the same primary, one reading the standby; each delivery read back with minPosition by both,
    // alternating which goes first, so that machine load falls on both alike.
    const plain = await startService({}, false);
    await expect.poll(async () => (await replicaHealth(app)).replica.state, { timeout: 10_000, interval: 50 }).toBe('up');
    const times = { replica: [] as number[], primary: [] as number[] };
    const timed = async (which: 'replica' | 'primary', n: number, position: string) => {
      const t0 = performance.now();
      const res = await getCall(which === 'replica' ? app : plain, n, position);
      times[which].push(performance.now() - t0);
      expect(res.statusCode).toBe(200);
    };
    for (let i = 0; i < 40; i++) {
      const n = 100 + i;
      const position = await deliver(app, n);
      const order: ('replica' | 'primary')[] = i % 2 === 0 ? ['replica', 'primary'] : ['primary', 'replica'];
      for (const which of order) await timed(which, n, position);
    }
    const pct = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor((p / 100) * xs.length))]!.toFixed(1);
    console.info(
      `read-your-writes, delivery 200 then GET /v1/calls/{id}?minPosition (ms, ${times.replica.length} each): ` +
        `standby p50 ${pct(times.replica, 50)} p90 ${pct(times.replica, 90)} max ${pct(times.replica, 100)}; ` +
        `primary p50 ${pct(times.primary, 50)} p90 ${pct(times.primary, 90)} max ${pct(times.primary, 100)}`,
    );
  }, 60_000);
});
