// The bench's hypervisor-steal figure, read from /proc/stat's aggregate cpu line.
import { describe, expect, it } from 'vitest';
import { parseCpuTimes, stealShare } from '../../bench/lib/steal.ts';

// Two readings taken five seconds apart on the 2-core VM (100 ticks/s per CPU).
const BEFORE = 'cpu  23313 0 2669 48653 374 0 436 2934 0 0\ncpu0 11656 0 1334 24326 187 0 218 1467 0 0\nintr 1';
const AFTER = 'cpu  23756 0 2695 48867 374 0 441 3298 0 0\ncpu0 11878 0 1347 24433 187 0 220 1649 0 0\nintr 1';

describe('steal time', () => {
  it('reads the aggregate line, not a per-CPU one, and leaves guest time out (it is in user)', () => {
    expect(parseCpuTimes(BEFORE)).toEqual({ total: 23313 + 2669 + 48653 + 374 + 436 + 2934, steal: 2934 });
    expect(parseCpuTimes('cpu  10 0 0 0 0 0 0 5 7 7\n')).toEqual({ total: 15, steal: 5 });
  });

  it('gives steal as a share of all CPU time between two readings', () => {
    // 443 user + 26 system + 214 idle + 5 softirq + 364 steal = 1052 ticks, 364 of them stolen.
    expect(stealShare(parseCpuTimes(BEFORE), parseCpuTimes(AFTER))).toBeCloseTo(364 / 1052, 6);
  });

  it('is undefined without a usable line, and NaN without two readings that advance', () => {
    expect(parseCpuTimes('intr 1\n')).toBeUndefined();
    expect(parseCpuTimes('cpu  1 2 3 4\n')).toBeUndefined();
    expect(parseCpuTimes('cpu  1 2 3 4 5 6 7 x\n')).toBeUndefined();
    expect(stealShare(undefined, parseCpuTimes(AFTER))).toBeNaN();
    expect(stealShare(parseCpuTimes(AFTER), parseCpuTimes(AFTER))).toBeNaN();
  });
});
