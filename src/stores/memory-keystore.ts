import { InvalidCredentialError } from '../core/errors.ts';
import { lockAmbiguous, validateKeyRecord, type LockedRecord } from './key-record.ts';
import type { KeyRecord, KeyStore } from './keystore.ts';

/** In-process key store: for tests and throwaway setups; nothing survives a restart. */
export class MemoryKeyStore implements KeyStore {
  /** What was loaded: records that passed the key-record schema, and those that did not. */
  protected records: readonly KeyRecord[] = [];
  protected invalidRecords: readonly LockedRecord[] = [];
  // Derived by replaceAll: the usable records, and everything locked out (invalid, or ambiguous
  // together: see lockAmbiguous).
  protected byHash = new Map<string, KeyRecord>();
  protected byId = new Map<string, KeyRecord>();
  protected lockedByHash = new Map<string, LockedRecord>();
  protected lockedList: readonly LockedRecord[] = [];

  async findByHash(hash: string): Promise<KeyRecord | undefined> {
    return this.byHash.get(hash) ?? this.lockedOut(hash);
  }

  /**
   * For a key whose record is locked out: throws, so the key is denied as such (401,
   * `api_key_record_invalid`). Only reached when no usable record has the hash: the hot path for a
   * valid key is the one Map lookup it always was.
   */
  protected lockedOut(hash: string): undefined {
    if (this.lockedByHash.has(hash))
      throw new InvalidCredentialError('api_key_record_invalid', 'The API key is invalid');
    return undefined;
  }

  async list(): Promise<KeyRecord[]> {
    return [...this.byId.values()];
  }
  /** Records locked out, with why (`portcullis keys list` shows them). */
  invalid(): readonly LockedRecord[] {
    return this.lockedList;
  }
  async listInvalid(): Promise<readonly LockedRecord[]> {
    return this.lockedList;
  }
  async put(record: KeyRecord): Promise<void> {
    const checked = checkedForWrite(record);
    this.replaceAll(
      [...this.records.filter((r) => r.id !== checked.id), checked],
      this.invalidRecords.filter((l) => l.id !== checked.id),
    );
  }
  async start(): Promise<void> {}
  isReady(): boolean {
    return true;
  }
  size(): number {
    return this.byId.size;
  }
  async close(): Promise<void> {}

  /** Replaces everything: records that passed the schema, and those that did not. */
  protected replaceAll(records: readonly KeyRecord[], invalid: readonly LockedRecord[] = this.invalidRecords): void {
    const { records: usable, locked } = lockAmbiguous(records, invalid);
    const byHash = new Map<string, KeyRecord>();
    const byId = new Map<string, KeyRecord>();
    const lockedByHash = new Map<string, LockedRecord>();
    for (const l of locked) if (l.hash !== undefined) lockedByHash.set(l.hash, l);
    for (const r of usable) {
      byHash.set(r.hash, r);
      byId.set(r.id, r);
    }
    // Swap whole maps so a lookup never sees a half-applied change.
    this.records = records;
    this.invalidRecords = invalid;
    this.byHash = byHash;
    this.byId = byId;
    this.lockedByHash = lockedByHash;
    this.lockedList = locked;
  }
}

/** A record a store is asked to write: it must pass the schema, or nothing is written. */
export function checkedForWrite(record: KeyRecord): KeyRecord {
  const v = validateKeyRecord(record, record.id);
  if ('locked' in v)
    throw new Error(`refusing to store an invalid key record ${v.locked.id ?? ''}: ${v.locked.problems.join('; ')}`);
  return v.record;
}
