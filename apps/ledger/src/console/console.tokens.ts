/** Directory of the built console, or null when it was not built. */
export const CONSOLE_ASSETS = Symbol('CONSOLE_ASSETS');
