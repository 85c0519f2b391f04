export interface SignatureFailureLimiterOptions {
  /** Refusals tolerated per address within one window; 0 disables the limit. */
  limit: number;
  windowMs: number;
  /** Addresses tracked at once: a flood of spoofed or rotating addresses must not grow memory without bound. */
  maxTracked?: number;
  now?: () => number;
}

interface Entry {
  count: number;
  resetAt: number;
}

/**
 * Counts refused credentials (webhook signatures or tokens; API keys in ApiKeyFailureLimiter) per remote address in
 * fixed windows. Once an address has used up its allowance, everything it sends is refused with 429 and
 * Retry-After until its window ends, a correct guess included: answering a right guess while refusing wrong ones
 * would still let a guesser go on at full speed and learn when it hit. Blocking by address is sound because the
 * address is the TCP peer unless LEDGER_TRUST_PROXY names proxies (README, "Guessing").
 */
export class SignatureFailureLimiter {
  private readonly entries = new Map<string, Entry>();
  private readonly maxTracked: number;
  private readonly now: () => number;

  constructor(private readonly options: SignatureFailureLimiterOptions) {
    this.maxTracked = options.maxTracked ?? 10_000;
    this.now = options.now ?? Date.now;
  }

  get tracked(): number {
    return this.entries.size;
  }

  /** Seconds to wait when `address` is over its allowance, else null. */
  blockedFor(address: string): number | null {
    if (this.options.limit <= 0) return null;
    const entry = this.entries.get(address);
    const now = this.now();
    if (!entry || entry.count < this.options.limit || now >= entry.resetAt) return null;
    return Math.max(1, Math.ceil((entry.resetAt - now) / 1000));
  }

  recordFailure(address: string): void {
    if (this.options.limit <= 0) return;
    const now = this.now();
    const entry = this.entries.get(address);
    if (entry && now < entry.resetAt) {
      entry.count += 1;
      return;
    }
    this.entries.delete(address);
    if (this.entries.size >= this.maxTracked) this.evict(now);
    this.entries.set(address, { count: 1, resetAt: now + this.options.windowMs });
  }

  /** Expired windows go first; if every window is live, the oldest ones (Map order is insertion order). */
  private evict(now: number): void {
    for (const [address, entry] of this.entries) if (now >= entry.resetAt) this.entries.delete(address);
    for (const address of this.entries.keys()) {
      if (this.entries.size < this.maxTracked) break;
      this.entries.delete(address);
    }
  }
}
