/** Tracks whether migrations have been applied; /health is ready only after. */
export const SCHEMA_STATE = Symbol('SCHEMA_STATE');
export interface SchemaState {
  migrated: boolean;
  lastError: string | null;
}
