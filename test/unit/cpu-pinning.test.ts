// The bench's --pin-server CPU lists: what is accepted, what is refused, and what is left for the load.
import { describe, expect, it } from 'vitest';
import { allCpus, parseCpuList, pinningFor, planPinning } from '../../bench/lib/cpu-pinning.ts';

describe('--pin-server', () => {
  it('reads single CPUs, lists and ranges', () => {
    expect(parseCpuList('0', 4)).toEqual([0]);
    expect(parseCpuList('2,0', 4)).toEqual([0, 2]);
    expect(parseCpuList('0-2', 4)).toEqual([0, 1, 2]);
    expect(parseCpuList('0-1,1', 4)).toEqual([0, 1]);
  });

  it('refuses what is not a CPU list, or names CPUs that do not exist', () => {
    expect(() => parseCpuList('a', 2)).toThrow(/not a CPU list/);
    expect(() => parseCpuList('', 2)).toThrow(/not a CPU list/);
    expect(() => parseCpuList('1-0', 2)).toThrow(/empty range/);
    expect(() => parseCpuList('2', 2)).toThrow(/CPU 2 does not exist \(this machine has CPUs 0-1\)/);
  });

  it('gives the load every other CPU, and refuses to leave it none', () => {
    expect(planPinning('0', 2)).toEqual({ server: '0', load: '1' });
    expect(planPinning('1', 4)).toEqual({ server: '1', load: '0,2,3' });
    expect(() => planPinning('0-1', 2)).toThrow(/no CPU left for the load generators/);
  });

  it('pins by default where it can (taskset, two CPUs or more), and not when told "none"', () => {
    expect(pinningFor(undefined, 2, true)).toEqual({ server: '0', load: '1' });
    expect(pinningFor(undefined, 8, true)).toEqual({ server: '0', load: '1,2,3,4,5,6,7' });
    expect(pinningFor(undefined, 1, true)).toBeUndefined();
    expect(pinningFor(undefined, 2, false)).toBeUndefined();
    expect(pinningFor('none', 2, true)).toBeUndefined();
    expect(pinningFor('1', 2, true)).toEqual({ server: '1', load: '0' });
  });

  it('refuses an explicit list it cannot apply, saying what to do', () => {
    expect(() => pinningFor('0', 2, false)).toThrow(/needs taskset .*or --pin-server none/);
    expect(() => pinningFor('0-1', 2, true)).toThrow(/no CPU left/);
  });

  it('names every CPU for the unpinned workers runs', () => {
    expect(allCpus(2)).toBe('0-1');
    expect(allCpus(1)).toBe('0');
  });
});
