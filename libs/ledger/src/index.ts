export * from './call-leg.events.js';
export * from './ledger.errors.js';
export * from './call-leg.js';
export * from './project-call-leg.js';
export * from './call-tree.js';
export * from './kpis.js';
