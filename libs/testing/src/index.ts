export * from './test-database.js';
export * from './webhook-records.js';
export * from './recording-projection.js';
export * from './legacy-append.js';
