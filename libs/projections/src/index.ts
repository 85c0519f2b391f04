export * from './event-reader.js';
export * from './projection.js';
export * from './projector.js';
export * from './call-legs.projection.js';
export type * from './read-models.types.js';
export { withProjectionTables } from './read-models.types.js';
