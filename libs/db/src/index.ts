export * from './database.js';
export type * from './database.types.js';
export * from './embedded-postgres.js';
export * from './migrate.js';
export * from './postgres-errors.js';
export * from './database-roles.js';
export * from './read-routing.js';
export * from './replica-status.js';
export * from './loop-slices.js';
