import pg from 'pg';

/**
 * The service's two database roles (see README "Database roles"):
 * - APP_ROLE serves HTTP: reads everything, appends only through `ledger_append` (SECURITY DEFINER), owns nothing.
 * - PROJECTOR_ROLE owns the read models and the projection bookkeeping and only reads the store.
 * The owner (whoever runs the migrations) owns the store. Role names are cluster-wide in PostgreSQL.
 */
export const APP_ROLE = 'ledger_app';
export const PROJECTOR_ROLE = 'ledger_projector';

/**
 * Lets the service roles log in with the given passwords (embedded PostgreSQL and tests: the owner manages
 * them; with an external server the operator does). Run as the owner after the migrations created the roles.
 */
export const grantServiceLogins = async (ownerUrl: string, passwords: { app: string; projector: string }): Promise<void> => {
  const client = new pg.Client({ connectionString: ownerUrl, connectionTimeoutMillis: 10_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    for (const [role, password] of [[APP_ROLE, passwords.app], [PROJECTOR_ROLE, passwords.projector]] as const) {
      await client.query(`ALTER ROLE ${client.escapeIdentifier(role)} LOGIN PASSWORD ${client.escapeLiteral(password)}`);
    }
  } finally {
    await client.end().catch(() => undefined);
  }
};

/** The same server and database as `url`, logged in as another role. */
export const urlAsRole = (url: string, role: string, password: string): string => {
  const u = new URL(url);
  u.username = encodeURIComponent(role);
  u.password = encodeURIComponent(password);
  return u.toString();
};
