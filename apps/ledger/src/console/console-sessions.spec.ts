import { describe, expect, it } from 'vitest';
import { ConsoleSessions } from './console-sessions.js';

const clock = () => {
  let now = 1_000_000;
  return { now: () => now, advance: (ms: number) => void (now += ms) };
};

describe('ConsoleSessions', () => {
  it('ends a session left idle too long, and one older than the absolute limit however busy', () => {
    const c = clock();
    const sessions = new ConsoleSessions({ idleMs: 1000, absoluteMs: 5000, max: 10, now: c.now });
    const idle = sessions.create('k');
    const busy = sessions.create('k');
    c.advance(900);
    expect(sessions.touch(busy.id)).not.toBeNull();
    c.advance(200);
    expect(sessions.touch(idle.id)).toBeNull();
    expect(sessions.touch(busy.id)).not.toBeNull();
    for (let i = 0; i < 4; i++) {
      c.advance(900);
      expect(sessions.touch(busy.id)).not.toBeNull();
    }
    c.advance(900);
    expect(sessions.touch(busy.id)).toBeNull();
    expect(sessions.size).toBe(0);
  });

  it('holds at most max sessions, dropping the least recently used', () => {
    const sessions = new ConsoleSessions({ idleMs: 60_000, absoluteMs: 60_000, max: 3 });
    const [a, b, c] = [sessions.create('k'), sessions.create('k'), sessions.create('k')];
    sessions.touch(a.id);
    const d = sessions.create('k');
    expect(sessions.size).toBe(3);
    expect(sessions.touch(b.id)).toBeNull();
    for (const s of [a, c, d]) expect(sessions.touch(s.id)).not.toBeNull();
  });

  it('gives each session a distinct random id and CSRF token', () => {
    const sessions = new ConsoleSessions();
    const ids = new Set(Array.from({ length: 100 }, () => sessions.create('k')).flatMap((s) => [s.id, s.csrf]));
    expect(ids.size).toBe(200);
  });
});
