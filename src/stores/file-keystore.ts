// File key store: a YAML file of hashed key records. The CLI edits it (locked, atomic rename);
// a running server polls it and swaps its in-memory copy, so changes apply within seconds.
import { closeSync, existsSync, openSync, readFileSync, renameSync, statSync, unlinkSync, unwatchFile, watchFile, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import type { Logger } from 'pino';
import type { KeyRecord } from './keystore.ts';
import { MemoryKeyStore } from './memory-keystore.ts';

const HEADER = '# Portcullis API keys: SHA-256 hashes only, never the keys. Managed with `portcullis keys`.\n';

export class FileKeyStore extends MemoryKeyStore {
  private loaded = false;
  private watching = false;

  constructor(
    readonly path: string,
    private readonly log?: Logger,
    private readonly pollMs = 1000,
  ) {
    super();
  }

  override async start(): Promise<void> {
    this.reload();
    if (!this.watching) {
      this.watching = true;
      watchFile(this.path, { interval: this.pollMs, persistent: false }, () => this.reload());
    }
  }

  override isReady(): boolean {
    return this.loaded;
  }

  override async list(): Promise<KeyRecord[]> {
    if (!this.loaded) this.reload();
    return super.list();
  }

  override async put(record: KeyRecord): Promise<void> {
    this.withLock(() => {
      const records = this.readFile().filter((r) => r.id !== record.id);
      records.push(record);
      this.writeFile(records);
      this.replaceAll(records);
    });
  }

  override async close(): Promise<void> {
    if (this.watching) unwatchFile(this.path);
    this.watching = false;
  }

  /** Re-reads the file; on a bad file the previous records keep serving. */
  reload(): void {
    try {
      this.replaceAll(this.readFile());
      this.loaded = true;
      this.log?.debug({ path: this.path, keys: this.size() }, 'key store loaded');
    } catch (e) {
      this.log?.error({ path: this.path, err: (e as Error).message }, 'key store file unreadable; keeping the previous keys. Fix the file or restore it from backup');
      if (!this.loaded) throw e;
    }
  }

  private readFile(): KeyRecord[] {
    if (!existsSync(this.path)) return [];
    const doc = parse(readFileSync(this.path, 'utf8')) as { keys?: unknown } | null;
    const keys = doc?.keys ?? [];
    if (!Array.isArray(keys)) throw new Error(`${this.path}: "keys" must be a list`);
    keys.forEach((k, i) => {
      if (!k || typeof k.id !== 'string' || typeof k.hash !== 'string' || !/^[0-9a-f]{64}$/.test(k.hash) || typeof k.client_id !== 'string') {
        throw new Error(`${this.path}: keys[${i}] needs id, client_id and a 64-hex-digit hash`);
      }
      if (!Array.isArray(k.scopes)) k.scopes = [];
      // Anything but an explicit "active" is revoked (as in the Redis store): a typo or an unknown
      // status ("disabled", "Active") must not grant.
      if (k.status !== 'active') k.status = 'revoked';
    });
    return keys as KeyRecord[];
  }

  private writeFile(records: KeyRecord[]): void {
    const tmp = `${this.path}.${process.pid}.tmp`;
    writeFileSync(tmp, HEADER + stringify({ keys: records }), { mode: 0o600 });
    renameSync(tmp, this.path);
  }

  private withLock<T>(fn: () => T): T {
    const lock = `${this.path}.lock`;
    const deadline = Date.now() + 5000;
    let fd: number | undefined;
    while (fd === undefined) {
      try {
        fd = openSync(lock, 'wx');
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
        // A lock older than 30 s belongs to a crashed writer.
        try {
          if (Date.now() - statSync(lock).mtimeMs > 30_000) unlinkSync(lock);
        } catch {}
        if (Date.now() > deadline) throw new Error(`${lock} is held by another writer; remove it if no portcullis keys command is running`);
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 20);
      }
    }
    try {
      return fn();
    } finally {
      closeSync(fd);
      unlinkSync(lock);
    }
  }
}
