// The log line's timestamp: the same field pino's isoTime writes, formatted once per millisecond.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { createLogger, isoTimeField } from '../../src/runtime/logger.ts';

afterEach(() => {
  vi.useRealTimers();
});

describe('isoTimeField', () => {
  it('writes exactly what pino.stdTimeFunctions.isoTime writes, and follows the clock', () => {
    vi.useFakeTimers();
    for (const at of [
      '2026-12-01T10:00:00.123Z',
      '2026-12-01T10:00:00.124Z',
      '2026-12-31T23:59:59.999Z',
      '2027-01-01T00:00:00.000Z',
    ]) {
      vi.setSystemTime(new Date(at));
      expect(isoTimeField()).toBe(pino.stdTimeFunctions.isoTime());
      expect(isoTimeField()).toBe(`,"time":"${at}"`);
    }
    // Back in time (an NTP step): still the clock's own value, never a stale one.
    vi.setSystemTime(new Date('2026-12-01T09:00:00.000Z'));
    expect(isoTimeField()).toBe(',"time":"2026-12-01T09:00:00.000Z"');
  });

  it('is the timestamp of every log line', () => {
    vi.useFakeTimers();
    vi.setSystemTime(new Date('2026-12-01T10:00:00.500Z'));
    const lines: string[] = [];
    const log = createLogger('info', new Writable({ write: (c, _e, cb) => (lines.push(String(c)), cb()) }));
    log.info({ event: 'x' }, 'one');
    log.flush?.();
    expect(JSON.parse(lines[0]).time).toBe('2026-12-01T10:00:00.500Z');
  });
});
