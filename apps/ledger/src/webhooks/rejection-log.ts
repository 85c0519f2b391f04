import { Injectable } from '@nestjs/common';

export interface RejectionEntry {
  at: string;
  provider: string;
  path: string;
  remoteAddr: string | null;
  reason: string;
  contentType: string | null;
  bodyBytes: number;
  userAgent: string | null;
}

/**
 * The last rejected deliveries, metadata only: never bodies, and never signatures or tokens, which an
 * attacker could replay or a legitimate sender could have mis-sent with a secret in them.
 */
@Injectable()
export class RejectionLog {
  static readonly CAPACITY = 200;
  private readonly entries: RejectionEntry[] = [];
  private total = 0;

  record(entry: RejectionEntry): void {
    this.total += 1;
    this.entries.push(entry);
    if (this.entries.length > RejectionLog.CAPACITY) this.entries.shift();
  }

  snapshot(): { total: number; recent: RejectionEntry[] } {
    return { total: this.total, recent: [...this.entries].reverse() };
  }
}
