import { availableParallelism } from 'node:os';

/** Parses --workers: a positive integer, or "auto" for one per available CPU. */
export function parseWorkers(value: string): number {
  if (value === 'auto') return availableParallelism();
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 256)
    throw new Error(`--workers must be a positive integer or "auto", not "${value}"`);
  return n;
}
