import type { KeyRecord, KeyStore } from './keystore.ts';

/** In-process key store: for tests and throwaway setups; nothing survives a restart. */
export class MemoryKeyStore implements KeyStore {
  protected byHash = new Map<string, KeyRecord>();
  protected byId = new Map<string, KeyRecord>();

  async findByHash(hash: string): Promise<KeyRecord | undefined> {
    return this.byHash.get(hash);
  }
  async list(): Promise<KeyRecord[]> {
    return [...this.byId.values()];
  }
  async put(record: KeyRecord): Promise<void> {
    this.replaceAll([...[...this.byId.values()].filter((r) => r.id !== record.id), record]);
  }
  async start(): Promise<void> {}
  isReady(): boolean {
    return true;
  }
  size(): number {
    return this.byId.size;
  }
  async close(): Promise<void> {}

  protected replaceAll(records: KeyRecord[]): void {
    const byHash = new Map<string, KeyRecord>();
    const byId = new Map<string, KeyRecord>();
    for (const r of records) {
      byHash.set(r.hash, r);
      byId.set(r.id, r);
    }
    // Swap whole maps so a lookup never sees a half-applied change.
    this.byHash = byHash;
    this.byId = byId;
  }
}
