export * from './call-leg.events.js';
export * from './ledger.errors.js';
export * from './call-leg.js';
