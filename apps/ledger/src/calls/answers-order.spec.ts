import { describe, expect, it } from 'vitest';
import { answersAfterTheirDeliveries } from './get-call-events.query.js';

const row = (id: string, receipt: string, answers?: string) => ({
  id,
  receipt: { id: receipt, source: answers === undefined ? 'live' : 'answer' },
  link: { data: answers === undefined ? {} : { answersReceiptId: answers } },
});

describe('answersAfterTheirDeliveries', () => {
  it('moves an answer committed after a later delivery back to right after the delivery it answered', () => {
    // Positions: the voice request (receipt 1, two events), a status callback (2) committed before the answer (3) to 1.
    const rows = [row('a', '1'), row('b', '1'), row('c', '2'), row('d', '3', '1'), row('e', '3', '1')];
    expect(answersAfterTheirDeliveries(rows).map((r) => r.id)).toEqual(['a', 'b', 'd', 'e', 'c']);
  });

  it('leaves an answer whose delivery is not listed (or was not stored) where its position puts it', () => {
    const rows = [row('a', '1'), row('d', '3', '9'), row('f', '4'), row('g', '5', null as unknown as string)];
    expect(answersAfterTheirDeliveries(rows).map((r) => r.id)).toEqual(['a', 'd', 'f', 'g']);
  });
});
