// The key store interface: one record per API key, found by the SHA-256 of the key.
// Implementations: memory (tests, ephemeral), file (single node), redis (shared by replicas).
import type { KeyRecord, LockedRecord } from './key-record.ts';

export type { KeyRecord, KeyStatus } from './key-record.ts';

export interface KeyStore {
  /**
   * Hot path. Throws DependencyUnavailableError when the answer needs a backend that is down, and
   * InvalidCredentialError (`api_key_record_invalid`) for a key whose record is locked out.
   */
  findByHash(hash: string): Promise<KeyRecord | undefined>;
  list(): Promise<KeyRecord[]>;
  /** Records locked out because they failed the key-record schema (or are ambiguous together), with why. */
  listInvalid(): Promise<readonly LockedRecord[]>;
  /** Inserts or replaces a record (by id). */
  put(record: KeyRecord): Promise<void>;
  /** Loads initial state and starts watching for changes (server side). */
  start(): Promise<void>;
  /** True once the store can answer lookups. */
  isReady(): boolean;
  /** Number of records, for metrics. */
  size(): number;
  close(): Promise<void>;
}

export function isExpired(record: KeyRecord, nowMs: number): boolean {
  if (record.expires_at === undefined || record.expires_at === null) return false;
  // An expiry that is not a timestamp string, or does not parse (NaN compares false with
  // everything), counts as expired: a key whose end cannot be read must not live forever.
  if (typeof record.expires_at !== 'string') return true;
  const t = Date.parse(record.expires_at);
  return !(t > nowMs);
}

export function isActive(record: KeyRecord, nowMs: number): boolean {
  return record.status === 'active' && !isExpired(record, nowMs);
}
