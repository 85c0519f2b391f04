import { createHash } from 'node:crypto';
import { resolve } from 'node:path';
import { z } from 'zod';
import { hasRetention, parseRetentionPolicy, type RetentionPolicy } from '@lib/ledger';

/**
 * Shortest webhook secret or API key accepted at start. A short secret is guessable offline from one signed
 * delivery (HMAC) or online despite the failure limiters; 16 characters of a random alphabet is ~96 bits.
 */
export const MIN_SECRET_LENGTH = 16;

const splitList = (value: string | undefined): string[] =>
  (value ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);

/** Comma-separated secrets, each at least MIN_SECRET_LENGTH long (the value is never echoed in the error). */
const secretList = z
  .string()
  .optional()
  .transform((value, ctx) => {
    const list = splitList(value);
    list.forEach((s, i) => {
      if (s.length < MIN_SECRET_LENGTH) ctx.addIssue({ code: 'custom', message: `value ${i + 1} is ${s.length} characters long; at least ${MIN_SECRET_LENGTH} are required` });
    });
    return list;
  });

/**
 * `read-masked`: the read routes with every number masked to its last four digits (support staff; README "Masking
 * in reads"). A key that holds `read` too reads unmasked.
 */
export const API_SCOPES = ['read', 'import', 'admin', 'read-masked'] as const;
export type ApiScope = (typeof API_SCOPES)[number];

export interface ApiKey {
  /** Shown in logs and audit records instead of the key: the entry's name, or `key-<sha256 prefix>` for a plain key. */
  name: string;
  scopes: ApiScope[];
  key: string;
  /** A plain `<key>` entry (every scope), as LEDGER_API_KEYS was before scopes. */
  plain: boolean;
}

/** A fingerprint that names a plain key in logs and audit records without revealing it. */
export const keyFingerprint = (key: string): string => `key-${createHash('sha256').update(key).digest('hex').slice(0, 12)}`;

const NAMED_KEY = /^([A-Za-z0-9_.-]{1,64}):([a-z+-]+):(.*)$/s;

/**
 * LEDGER_API_KEYS: comma-separated entries, each either `<name>:<scope>[+<scope>…]:<key>` (scopes read, import,
 * admin, read-masked) or a plain `<key>`, which keeps its old meaning of every scope (so existing deployments keep working;
 * the service warns about such keys at start). Names must be unique; keys must be unique and ≥ 16 characters.
 */
const apiKeyList = z
  .string()
  .optional()
  .transform((value, ctx): ApiKey[] => {
    const keys: ApiKey[] = [];
    splitList(value).forEach((entry, i) => {
      const where = `entry ${i + 1}`;
      const named = NAMED_KEY.exec(entry);
      let parsed: ApiKey;
      if (named) {
        const scopes = named[2]!.split('+');
        const unknown = scopes.filter((s) => !(API_SCOPES as readonly string[]).includes(s));
        if (unknown.length > 0 || scopes.length === 0) {
          ctx.addIssue({ code: 'custom', message: `${where} ("${named[1]}"): unknown scope "${unknown.join('+')}"; use ${API_SCOPES.join(', ')} joined by +` });
          return;
        }
        parsed = { name: named[1]!, scopes: [...new Set(scopes as ApiScope[])], key: named[3]!.trim(), plain: false };
      } else if (entry.includes(':')) {
        ctx.addIssue({ code: 'custom', message: `${where}: expected <name>:<scope>[+<scope>]:<key> (name of letters, digits, . _ -) or a plain key without ":"` });
        return;
      } else {
        parsed = { name: keyFingerprint(entry), scopes: [...API_SCOPES], key: entry, plain: true };
      }
      if (parsed.key.length < MIN_SECRET_LENGTH) {
        ctx.addIssue({ code: 'custom', message: `${where} ("${named ? parsed.name : 'plain key'}"): the key is ${parsed.key.length} characters long; at least ${MIN_SECRET_LENGTH} are required` });
        return;
      }
      if (keys.some((k) => k.name === parsed.name)) ctx.addIssue({ code: 'custom', message: `${where}: the name "${parsed.name}" is used twice` });
      else if (keys.some((k) => k.key === parsed.key)) ctx.addIssue({ code: 'custom', message: `${where} ("${parsed.name}"): the same key is listed twice` });
      else keys.push(parsed);
    });
    return keys;
  });

const PROVIDER_NAMES = ['freeclimb', 'jambonz', 'twilio', 'restcomm'] as const;
type ProviderName = (typeof PROVIDER_NAMES)[number];

/** LEDGER_ACCEPT_UNSIGNED: comma-separated providers, or `all`, whose deliveries are taken unsigned when no secret is set. */
const providerList = z
  .string()
  .optional()
  .transform((value, ctx): ProviderName[] => {
    const list = splitList(value).map((s) => s.toLowerCase());
    if (list.includes('all')) return [...PROVIDER_NAMES];
    for (const p of list) {
      if (!(PROVIDER_NAMES as readonly string[]).includes(p)) ctx.addIssue({ code: 'custom', message: `unknown provider "${p}"; use ${PROVIDER_NAMES.join(', ')} or all` });
    }
    return [...new Set(list)] as ProviderName[];
  });

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().default('0.0.0.0'),
  DATABASE_URL: z.string().url().optional(),
  LEDGER_DATABASE_OWNER_URL: z.string().url().optional(),
  LEDGER_PROJECTOR_DATABASE_URL: z.string().url().optional(),
  // A streaming standby of the primary that the query routes read from (README "Read replica").
  DATABASE_READ_URL: z.string().url().optional(),
  LEDGER_READ_FALLBACK: z.enum(['primary', 'unavailable']).default('primary'),
  LEDGER_DB_CONNECT_TIMEOUT_MS: z.coerce.number().int().min(100).default(2_000),
  LEDGER_DB_STATEMENT_TIMEOUT_MS: z.coerce.number().int().min(0).default(15_000),
  LEDGER_DB_LOCK_TIMEOUT_MS: z.coerce.number().int().min(0).default(5_000),
  LEDGER_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS: z.coerce.number().int().min(0).default(30_000),
  LEDGER_INGEST_DEADLINE_MS: z.coerce.number().int().min(0).default(800),
  LEDGER_EMBEDDED_MAX_RESTARTS: z.coerce.number().int().min(1).default(8),
  LEDGER_DATA_DIR: z.string().default('./.data'),
  LEDGER_DB_POOL_SIZE: z.coerce.number().int().min(2).max(200).default(10),
  LEDGER_PUBLIC_URL: z.string().url().optional(),
  LEDGER_API_KEYS: apiKeyList,
  LEDGER_ACCEPT_UNSIGNED: providerList,
  FREECLIMB_SIGNING_SECRET: secretList,
  JAMBONZ_WEBHOOK_SECRET: secretList,
  TWILIO_AUTH_TOKEN: secretList,
  RESTCOMM_WEBHOOK_TOKEN: secretList,
  LEDGER_MAX_BODY_BYTES: z.coerce.number().int().min(1024).default(1024 * 1024),
  LEDGER_INGEST_BATCH_MAX: z.coerce.number().int().min(1).max(5000).default(500),
  LEDGER_INGEST_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(2),
  LEDGER_INGEST_MAX_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(2),
  LEDGER_INGEST_QUEUE_MAX: z.coerce.number().int().min(1).default(10_000),
  LEDGER_PROJECTOR: z.enum(['on', 'worker', 'inline', 'off']).default('on'),
  LEDGER_PROJECTOR_GATHER_MS: z.coerce.number().int().min(0).max(10_000).default(50),
  LEDGER_PROJECTOR_THREAD_NICE: z.coerce.number().int().min(0).max(19).default(10),
  LEDGER_HEAP_GROWING_PERCENT: z.coerce.number().int().min(0).max(1000).default(100),
  LEDGER_HEAP_GROWING_PERCENT_BEHIND: z.coerce.number().int().min(0).max(1000).default(50),
  LEDGER_SIGNATURE_FAILURE_LIMIT: z.coerce.number().int().min(0).default(20),
  LEDGER_SIGNATURE_FAILURE_WINDOW_SEC: z.coerce.number().int().min(1).default(60),
  LEDGER_API_KEY_FAILURE_LIMIT: z.coerce.number().int().min(0).default(20),
  LEDGER_API_KEY_FAILURE_WINDOW_SEC: z.coerce.number().int().min(1).default(60),
  // Which proxies may set X-Forwarded-For: 'false' (none: the peer's address is the remote address), 'true'
  // (any), a hop count, or a comma-separated list of proxy addresses/CIDRs. Off by default, because a trusted
  // header lets any client choose the address that is stored and rate-limited.
  LEDGER_TRUST_PROXY: z
    .string()
    .default('false')
    .transform((v): boolean | number | string[] => {
      const t = v.trim();
      if (t === 'false' || t === '') return false;
      if (t === 'true') return true;
      if (/^\d+$/.test(t)) return Number(t);
      return t.split(',').map((x) => x.trim()).filter(Boolean);
    }),
  // Ed25519 private key (PKCS#8 PEM, or base64 of the DER) that signs the audit checkpoints. Unset: unsigned.
  LEDGER_CHECKPOINT_SIGNING_KEY: z.string().optional(),
  LEDGER_CHECKPOINT_INTERVAL_SEC: z.coerce.number().int().min(0).default(60),
  // Partitioned store (README "Partitions and retention"): months of webhook_receipts/events made ahead of now, and
  // how often the service checks (0: only at start; the appends still make a missing month of their own batch).
  LEDGER_PARTITIONS_AHEAD: z.coerce.number().int().min(1).max(60).default(3),
  LEDGER_PARTITION_CHECK_INTERVAL_SEC: z.coerce.number().int().min(0).default(3600),
  // Retention of raw deliveries (README "Partitions and retention"): rules such as 'raw=400d,raw:twilio=90d'; unset:
  // everything is kept. Expired months are archived to LEDGER_ARCHIVE_DIR (required with a rule) and dropped.
  LEDGER_RETENTION: z
    .string()
    .default('')
    .transform((v, ctx) => {
      try {
        return parseRetentionPolicy(v);
      } catch (err) {
        ctx.addIssue({ code: 'custom', message: (err as Error).message });
        return z.NEVER;
      }
    }),
  LEDGER_ARCHIVE_DIR: z.string().optional(),
  LEDGER_RETENTION_INTERVAL_SEC: z.coerce.number().int().min(0).default(86_400),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  // HTTP edge limits against slow clients (see README, Configuration). Node's own defaults (60 s for headers,
  // 5 min per request, no connection cap) let a few thousand idle sockets or trickled bodies hold the process.
  LEDGER_HEADERS_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  LEDGER_REQUEST_TIMEOUT_MS: z.coerce.number().int().min(100).default(120_000),
  // Above a load balancer's usual 60 s idle timeout. Shorter, the service closes idle sockets that a client may be
  // reusing at that moment (10 s cost the overload chaos test sockets closed under requests).
  LEDGER_KEEPALIVE_TIMEOUT_MS: z.coerce.number().int().min(100).default(72_000),
  LEDGER_SOCKET_TIMEOUT_MS: z.coerce.number().int().min(0).default(60_000),
  LEDGER_MAX_REQUESTS_PER_SOCKET: z.coerce.number().int().min(0).default(1000),
  LEDGER_MAX_CONNECTIONS: z.coerce.number().int().min(1).default(2048),
  LEDGER_MAX_BODY_BYTES_IN_FLIGHT: z.coerce.number().int().min(1024).default(32 * 1024 * 1024),
  // Tee mode (README "Tee mode"): the app's base URL per provider; only these URLs are ever called.
  LEDGER_TEE_FREECLIMB_URL: z.string().url().optional(),
  LEDGER_TEE_JAMBONZ_URL: z.string().url().optional(),
  LEDGER_TEE_TWILIO_URL: z.string().url().optional(),
  LEDGER_TEE_RESTCOMM_URL: z.string().url().optional(),
  LEDGER_TEE_TIMEOUT_MS: z.coerce.number().int().min(100).default(10_000),
  LEDGER_TEE_MAX_ANSWER_BYTES: z.coerce.number().int().min(1024).default(256 * 1024),
  LEDGER_TEE_CONNECTIONS: z.coerce.number().int().min(1).max(4096).default(128),
});

export interface LedgerConfig {
  port: number;
  host: string;
  /** Absent: start the embedded PostgreSQL under `dataDir`. */
  databaseUrl: string | undefined;
  /**
   * Owner of the store (migrations). Set: DATABASE_URL is the app role and `projectorDatabaseUrl` the projector
   * role (README "Database roles"). Unset with DATABASE_URL: one role does everything, as before.
   */
  databaseOwnerUrl: string | undefined;
  projectorDatabaseUrl: string | undefined;
  /**
   * A streaming standby for the query routes (calls, recordings, exports, analytics); ingest, import, admin,
   * audit and the projector stay on the primary. Unset: everything reads the primary.
   */
  readDatabaseUrl: string | undefined;
  /** While the replica is down: read the primary instead (default), or answer 503 READ.REPLICA_UNAVAILABLE. */
  readFallback: 'primary' | 'unavailable';
  dataDir: string;
  poolSize: number;
  /** Limits of the request-serving pool (ms; 0 = none). */
  dbTimeouts: { connectMs: number; statementMs: number; lockMs: number; idleInTransactionMs: number };
  /** A delivery not committed within this gets 503 with Retry-After (0 = no deadline). */
  ingestDeadlineMs: number;
  /** Consecutive failed restarts of the embedded PostgreSQL before the service exits non-zero. */
  embeddedMaxRestarts: number;
  /** Base of the URL providers call, used for Twilio signatures (they sign the full URL). */
  publicUrl: string | undefined;
  apiKeys: ApiKey[];
  /**
   * Providers whose deliveries are accepted unsigned (and marked unverified) while they have no secret: a
   * development opt-in. Any other provider without a secret is refused (WEBHOOK.PROVIDER_NOT_CONFIGURED).
   */
  acceptUnsigned: ProviderName[];
  secrets: {
    freeclimb: string[];
    jambonz: string[];
    twilio: string[];
    restcomm: string[];
  };
  maxBodyBytes: number;
  ingestBatchMax: number;
  ingestQueueMax: number;
  /** Group-commit transactions in flight at once under load. */
  ingestConcurrency: number;
  /**
   * Group-commit transactions in flight while the load is low (few concurrent deliveries), at least
   * `ingestConcurrency` and at most the pool size less two (the pool also serves the queries).
   */
  ingestMaxConcurrency: number;
  /** Run the projector inside the service (off when `npm run projector` runs it apart). */
  projectorInProcess: boolean;
  /**
   * How the service runs its projector: `worker` in a worker thread of its own (its folds off the event loop that
   * serves requests), `inline` on that event loop, `off` not at all. LEDGER_PROJECTOR=on means `inline`: side by side on a quiet machine the thread
   * gave the tee and the webhooks no lower p99 and cost more CPU per request and RSS (BENCHMARKS.md, issue 13).
   */
  projectorMode: 'worker' | 'inline' | 'off';
  /** The worker thread's nice value (Linux, per thread): it yields the cores to ingest and PostgreSQL when they are short. 0: the process's. */
  projectorThreadNice: number;
  /** Live projector batches start at most this often (ms) unless a read-your-writes waiter is there; 0: at every wake-up. */
  projectorGatherMs: number;
  /**
   * V8's heap growing factor, as a percentage over the live size (`--heap-growing-percent`): how far the old
   * generation may grow past what the last full collection kept before the next one. 0: V8's own choice, which on
   * a host whose heap limit is 2 GB or more lets it grow to 4 times the live size (applyHeapGrowing).
   */
  heapGrowingPercent: number;
  /**
   * The same while the in-process projector is behind (its batches full: an import landing, a backlog); 0: no change.
   * The projector's onBehind switches between the two (heap-growing.runtime.ts).
   */
  heapGrowingPercentBehind: number;
  logLevel: z.infer<typeof envSchema>['LOG_LEVEL'];
  /**
   * Refused webhook signatures/tokens tolerated from one remote address per window; past it the address gets
   * 429 until the window has passed. 0 turns the limit off.
   */
  signatureFailureLimit: number;
  signatureFailureWindowSec: number;
  /** Refused API keys tolerated from one remote address per window; past it every request from it gets 429. 0: off. */
  apiKeyFailureLimit: number;
  apiKeyFailureWindowSec: number;
  /** Fastify's trustProxy: false, true, a hop count or proxy addresses. */
  trustProxy: boolean | number | string[];
  /** Ed25519 key that signs checkpoints (PEM or base64 PKCS#8); undefined: checkpoints are unsigned. */
  checkpointSigningKey: string | undefined;
  /** Seconds between periodic checkpoints; 0: only on demand. */
  checkpointIntervalSec: number;
  retention: {
    policy: RetentionPolicy;
    /** Where expired months are archived; undefined only when no rule drops anything. */
    archiveDir: string | undefined;
    /** Seconds between retention runs; 0: only on demand (POST /v1/admin/retention). */
    intervalSec: number;
  };
  partitions: {
    /** Months made ahead of the current one. */
    ahead: number;
    /** Seconds between checks that they exist; 0: only at start. */
    checkIntervalSec: number;
  };
  http: {
    /** A connection must have sent its whole request head within this (else 408 and closed). */
    headersTimeoutMs: number;
    /** ...and its whole request, body included (an import upload too). */
    requestTimeoutMs: number;
    /** An idle keep-alive connection is closed after this. */
    keepAliveTimeoutMs: number;
    /** A socket with no traffic either way is destroyed after this (0: never). */
    socketTimeoutMs: number;
    /** Requests served on one keep-alive connection before it is closed (0: no limit). */
    maxRequestsPerSocket: number;
    /** Open connections at most; past it the oldest one without a request in progress is closed. */
    maxConnections: number;
    /** Bytes of request bodies buffered at once across all requests; past it 503 before the body is read. */
    maxBodyBytesInFlight: number;
  };
  tee: {
    /** The app's base URL per provider (no trailing slash); a provider without one has no tee route. */
    urls: Partial<Record<ProviderName, string>>;
    /** The app must have answered completely within this, else the provider gets 504 (what it would get from a dead app). */
    timeoutMs: number;
    /** Largest answer body read from the app; a bigger one is refused with 502 and recorded. */
    maxAnswerBytes: number;
    /** Connections to each app at most (undici pool). */
    connections: number;
  };
}

export class ConfigError extends Error {}

/** The one place that reads process.env: everything else receives a typed LedgerConfig. */
export const loadConfig = (env: NodeJS.ProcessEnv = process.env): LedgerConfig => {
  const parsed = envSchema.safeParse(env);
  if (!parsed.success) {
    const details = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
    throw new ConfigError(`invalid configuration: ${details}`);
  }
  const e = parsed.data;
  if (hasRetention(e.LEDGER_RETENTION) && !e.LEDGER_ARCHIVE_DIR?.trim()) {
    throw new ConfigError('invalid configuration: LEDGER_ARCHIVE_DIR is required with LEDGER_RETENTION (expired months are archived there before they are dropped)');
  }
  if (e.LEDGER_DATABASE_OWNER_URL && !e.DATABASE_URL) {
    throw new ConfigError('invalid configuration: LEDGER_DATABASE_OWNER_URL needs DATABASE_URL (the app role)');
  }
  if (e.LEDGER_DATABASE_OWNER_URL && !e.LEDGER_PROJECTOR_DATABASE_URL) {
    throw new ConfigError('invalid configuration: LEDGER_DATABASE_OWNER_URL needs LEDGER_PROJECTOR_DATABASE_URL (the projector role)');
  }
  return {
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    databaseOwnerUrl: e.LEDGER_DATABASE_OWNER_URL,
    projectorDatabaseUrl: e.LEDGER_PROJECTOR_DATABASE_URL,
    readDatabaseUrl: e.DATABASE_READ_URL,
    readFallback: e.LEDGER_READ_FALLBACK,
    dataDir: resolve(e.LEDGER_DATA_DIR),
    poolSize: e.LEDGER_DB_POOL_SIZE,
    dbTimeouts: {
      connectMs: e.LEDGER_DB_CONNECT_TIMEOUT_MS,
      statementMs: e.LEDGER_DB_STATEMENT_TIMEOUT_MS,
      lockMs: e.LEDGER_DB_LOCK_TIMEOUT_MS,
      idleInTransactionMs: e.LEDGER_DB_IDLE_IN_TRANSACTION_TIMEOUT_MS,
    },
    ingestDeadlineMs: e.LEDGER_INGEST_DEADLINE_MS,
    embeddedMaxRestarts: e.LEDGER_EMBEDDED_MAX_RESTARTS,
    publicUrl: e.LEDGER_PUBLIC_URL?.replace(/\/+$/, ''),
    apiKeys: e.LEDGER_API_KEYS,
    acceptUnsigned: e.LEDGER_ACCEPT_UNSIGNED,
    secrets: {
      freeclimb: e.FREECLIMB_SIGNING_SECRET,
      jambonz: e.JAMBONZ_WEBHOOK_SECRET,
      twilio: e.TWILIO_AUTH_TOKEN,
      restcomm: e.RESTCOMM_WEBHOOK_TOKEN,
    },
    maxBodyBytes: e.LEDGER_MAX_BODY_BYTES,
    ingestBatchMax: e.LEDGER_INGEST_BATCH_MAX,
    ingestQueueMax: e.LEDGER_INGEST_QUEUE_MAX,
    ingestConcurrency: e.LEDGER_INGEST_CONCURRENCY,
    ingestMaxConcurrency: Math.max(e.LEDGER_INGEST_CONCURRENCY, Math.min(e.LEDGER_INGEST_MAX_CONCURRENCY, e.LEDGER_DB_POOL_SIZE - 2)),
    projectorInProcess: e.LEDGER_PROJECTOR !== 'off',
    projectorMode: e.LEDGER_PROJECTOR === 'on' ? 'inline' : e.LEDGER_PROJECTOR,
    projectorThreadNice: e.LEDGER_PROJECTOR_THREAD_NICE,
    projectorGatherMs: e.LEDGER_PROJECTOR_GATHER_MS,
    heapGrowingPercent: e.LEDGER_HEAP_GROWING_PERCENT,
    heapGrowingPercentBehind: e.LEDGER_HEAP_GROWING_PERCENT_BEHIND,
    logLevel: e.LOG_LEVEL,
    signatureFailureLimit: e.LEDGER_SIGNATURE_FAILURE_LIMIT,
    signatureFailureWindowSec: e.LEDGER_SIGNATURE_FAILURE_WINDOW_SEC,
    apiKeyFailureLimit: e.LEDGER_API_KEY_FAILURE_LIMIT,
    apiKeyFailureWindowSec: e.LEDGER_API_KEY_FAILURE_WINDOW_SEC,
    trustProxy: e.LEDGER_TRUST_PROXY,
    checkpointSigningKey: e.LEDGER_CHECKPOINT_SIGNING_KEY?.trim() || undefined,
    checkpointIntervalSec: e.LEDGER_CHECKPOINT_INTERVAL_SEC,
    partitions: { ahead: e.LEDGER_PARTITIONS_AHEAD, checkIntervalSec: e.LEDGER_PARTITION_CHECK_INTERVAL_SEC },
    retention: { policy: e.LEDGER_RETENTION, archiveDir: e.LEDGER_ARCHIVE_DIR?.trim() ? resolve(e.LEDGER_ARCHIVE_DIR.trim()) : undefined, intervalSec: e.LEDGER_RETENTION_INTERVAL_SEC },
    http: {
      headersTimeoutMs: e.LEDGER_HEADERS_TIMEOUT_MS,
      // Node requires headersTimeout <= requestTimeout.
      requestTimeoutMs: Math.max(e.LEDGER_REQUEST_TIMEOUT_MS, e.LEDGER_HEADERS_TIMEOUT_MS),
      keepAliveTimeoutMs: e.LEDGER_KEEPALIVE_TIMEOUT_MS,
      socketTimeoutMs: e.LEDGER_SOCKET_TIMEOUT_MS,
      maxRequestsPerSocket: e.LEDGER_MAX_REQUESTS_PER_SOCKET,
      maxConnections: e.LEDGER_MAX_CONNECTIONS,
      // A budget smaller than one largest body would refuse every such body forever.
      maxBodyBytesInFlight: Math.max(e.LEDGER_MAX_BODY_BYTES_IN_FLIGHT, e.LEDGER_MAX_BODY_BYTES),
    },
    tee: {
      urls: Object.fromEntries(
        (
          [
            ['freeclimb', e.LEDGER_TEE_FREECLIMB_URL],
            ['jambonz', e.LEDGER_TEE_JAMBONZ_URL],
            ['twilio', e.LEDGER_TEE_TWILIO_URL],
            ['restcomm', e.LEDGER_TEE_RESTCOMM_URL],
          ] as const
        )
          .filter(([, url]) => url !== undefined)
          .map(([p, url]) => [p, url!.replace(/\/+$/, '')]),
      ),
      timeoutMs: e.LEDGER_TEE_TIMEOUT_MS,
      maxAnswerBytes: e.LEDGER_TEE_MAX_ANSWER_BYTES,
      connections: e.LEDGER_TEE_CONNECTIONS,
    },
  };
};

/** DI token for the parsed configuration. */
export const LEDGER_CONFIG = Symbol('LEDGER_CONFIG');

/**
 * What the service says loudly at start about how it authenticates: unsigned providers accepted on purpose
 * (development only), providers that will be refused for want of a secret, and plain keys that hold every scope.
 */
export const securityWarnings = (config: LedgerConfig): string[] => {
  const out: string[] = [];
  for (const provider of PROVIDER_NAMES) {
    if (config.secrets[provider].length > 0) continue;
    out.push(
      config.acceptUnsigned.includes(provider)
        ? `!!! ${provider}: NO SECRET and LEDGER_ACCEPT_UNSIGNED lists it: anyone can post forged ${provider} deliveries; they are stored and marked unverified. Development only !!!`
        : `${provider}: no secret configured, its deliveries are refused (403 WEBHOOK.PROVIDER_NOT_CONFIGURED)`,
    );
  }
  const plain = config.apiKeys.filter((k) => k.plain);
  if (plain.length > 0) {
    out.push(`LEDGER_API_KEYS: ${plain.length} plain key(s) (${plain.map((k) => k.name).join(', ')}) hold every scope; prefer <name>:<scopes>:<key> entries`);
  }
  return out;
};
