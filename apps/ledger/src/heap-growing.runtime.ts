import { setFlagsFromString } from 'node:v8';

/**
 * Bounds how far V8 lets the old generation grow past its live size before the next full collection
 * (LEDGER_HEAP_GROWING_PERCENT; 0 leaves V8's choice). V8 picks that factor from the heap limit, which it sizes
 * from the host's memory: with a limit of 2 GB or more (any host with 16 GB) up to 4 times the live size. An import
 * promotes garbage steadily (the projector's batches and the pg rows live across their statements), so the service
 * whose live heap is 60–90 MB grew to 270–300 MB of heap between full collections. At 100 (twice the live size) the
 * import's peak RSS fell by about 100 MB at the same CPU per row (bench/profile-notes.md, "the import's RSS").
 * V8 reads the flag whenever it recomputes its limit, so setting it at start-up applies to the whole process.
 */
export const applyHeapGrowing = (percent: number, set: (flags: string) => void = setFlagsFromString): void => {
  if (percent > 0) set(`--heap-growing-percent=${percent}`);
};

/**
 * The projector's onBehind: while its live loop is behind (full batches: an import landing, a backlog after an
 * outage), the old generation may grow only `behind` percent past its live size, and `normal` again once it has
 * caught up (0: V8's own choice). Full batches of 1,000 events, read, parsed and held across their statements, are
 * promoted at the rate the import lands them; at twice the live heap (100) the service still peaked at 245–264 MB
 * in a 100,000-row import, with 50 while behind at 229–240 MB (bench/profile-notes.md, "the import's RSS, third
 * pass"), while live ingest, whose batches are not full, keeps `normal`: 50 % there cost about 6 % more CPU a delivery.
 * Undefined when `behind` is 0 or `normal` already: nothing to switch.
 */
export const heapGrowingWhileBehind = (
  normal: number,
  behind: number,
  set: (flags: string) => void = setFlagsFromString,
): ((isBehind: boolean) => void) | undefined =>
  behind > 0 && behind !== normal ? (isBehind) => set(`--heap-growing-percent=${isBehind ? behind : normal}`) : undefined;
