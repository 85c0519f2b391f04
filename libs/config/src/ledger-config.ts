import { resolve } from 'node:path';
import { z } from 'zod';

const secretList = z
  .string()
  .optional()
  .transform((value) =>
    (value ?? '')
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s.length > 0),
  );

const envSchema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().default('0.0.0.0'),
  DATABASE_URL: z.string().url().optional(),
  LEDGER_DATA_DIR: z.string().default('./.data'),
  LEDGER_DB_POOL_SIZE: z.coerce.number().int().min(2).max(200).default(10),
  LEDGER_PUBLIC_URL: z.string().url().optional(),
  LEDGER_API_KEYS: secretList,
  FREECLIMB_SIGNING_SECRET: secretList,
  JAMBONZ_WEBHOOK_SECRET: secretList,
  TWILIO_AUTH_TOKEN: secretList,
  RESTCOMM_WEBHOOK_TOKEN: secretList,
  LEDGER_MAX_BODY_BYTES: z.coerce.number().int().min(1024).default(1024 * 1024),
  LEDGER_INGEST_BATCH_MAX: z.coerce.number().int().min(1).max(5000).default(500),
  LEDGER_INGEST_CONCURRENCY: z.coerce.number().int().min(1).max(64).default(2),
  LEDGER_INGEST_QUEUE_MAX: z.coerce.number().int().min(1).default(10_000),
  LEDGER_PROJECTOR: z.enum(['on', 'off']).default('on'),
  LEDGER_SIGNATURE_FAILURE_LIMIT: z.coerce.number().int().min(0).default(20),
  LEDGER_SIGNATURE_FAILURE_WINDOW_SEC: z.coerce.number().int().min(1).default(60),
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
});

export interface LedgerConfig {
  port: number;
  host: string;
  /** Absent: start the embedded PostgreSQL under `dataDir`. */
  databaseUrl: string | undefined;
  dataDir: string;
  poolSize: number;
  /** Base of the URL providers call, used for Twilio signatures (they sign the full URL). */
  publicUrl: string | undefined;
  apiKeys: string[];
  secrets: {
    freeclimb: string[];
    jambonz: string[];
    twilio: string[];
    restcomm: string[];
  };
  maxBodyBytes: number;
  ingestBatchMax: number;
  ingestQueueMax: number;
  /** Group-commit transactions in flight at once. */
  ingestConcurrency: number;
  /** Run the projector inside the service (off when `npm run projector` runs it apart). */
  projectorInProcess: boolean;
  logLevel: z.infer<typeof envSchema>['LOG_LEVEL'];
  /**
   * Refused webhook signatures/tokens tolerated from one remote address per window; past it the address gets
   * 429 until the window has passed. 0 turns the limit off.
   */
  signatureFailureLimit: number;
  signatureFailureWindowSec: number;
  /** Fastify's trustProxy: false, true, a hop count or proxy addresses. */
  trustProxy: boolean | number | string[];
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
  return {
    port: e.PORT,
    host: e.HOST,
    databaseUrl: e.DATABASE_URL,
    dataDir: resolve(e.LEDGER_DATA_DIR),
    poolSize: e.LEDGER_DB_POOL_SIZE,
    publicUrl: e.LEDGER_PUBLIC_URL?.replace(/\/+$/, ''),
    apiKeys: e.LEDGER_API_KEYS,
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
    projectorInProcess: e.LEDGER_PROJECTOR === 'on',
    logLevel: e.LOG_LEVEL,
    signatureFailureLimit: e.LEDGER_SIGNATURE_FAILURE_LIMIT,
    signatureFailureWindowSec: e.LEDGER_SIGNATURE_FAILURE_WINDOW_SEC,
    trustProxy: e.LEDGER_TRUST_PROXY,
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
  };
};

/** DI token for the parsed configuration. */
export const LEDGER_CONFIG = Symbol('LEDGER_CONFIG');
