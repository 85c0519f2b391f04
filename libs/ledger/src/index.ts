export * from './call-leg.events.js';
export * from './ledger.errors.js';
export * from './call-leg.js';
export * from './project-call-leg.js';
export * from './call-tree.js';
export * from './talk-histogram.js';
export * from './leg-rollup.js';
export * from './kpis.js';
