/**
 * Event data are hashed as canonical JSON, so a field the provider did not send must be absent from the data,
 * not present as `undefined`. Every translator builds its optional fields through this.
 */
export const stripUndefined = <T extends object>(obj: T): T =>
  Object.fromEntries(Object.entries(obj).filter(([, v]) => v !== undefined)) as T;
