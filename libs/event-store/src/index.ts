export * from './canonical-json.js';
export * from './event-store.repository.js';
export * from './group-commit-writer.js';
export * from './hash-chain.js';
export * from './webhook-record.js';
export * from './dedupe-key.js';
export * from './checkpoint.js';
export * from './checkpoint.repository.js';
