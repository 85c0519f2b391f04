/** Tracks whether migrations have been applied; /health is ready only after. */
export const SCHEMA_STATE = Symbol('SCHEMA_STATE');
export interface SchemaState {
  migrated: boolean;
  lastError: string | null;
}

/**
 * The Database the query routes read with (calls, recordings, exports, analytics): routed to DATABASE_READ_URL's
 * replica while it is up (ReadReplicaService), else the primary's request Database.
 */
export const READ_DATABASE = Symbol('READ_DATABASE');
