export * from './test-database.js';
export * from './webhook-records.js';
