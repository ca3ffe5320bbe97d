// File key store: a YAML file of hashed key records. The CLI edits it (locked, atomic rename);
// a running server polls it and swaps its in-memory copy, so changes apply within seconds.
import { closeSync, existsSync, openSync, readFileSync, renameSync, statSync, unlinkSync, unwatchFile, watchFile, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import type { Logger } from 'pino';
import { admitKeyRecords, logLocked, type LockedRecord } from './key-record.ts';
import type { KeyRecord } from './keystore.ts';
import { checkedForWrite, MemoryKeyStore } from './memory-keystore.ts';

const HEADER = '# Portcullis API keys: SHA-256 hashes only, never the keys. Managed with `portcullis keys`.\n';

export class FileKeyStore extends MemoryKeyStore {
  private loaded = false;
  private watching = false;
  private lockedSaid: ReadonlySet<string> = new Set();

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

  override async listInvalid(): Promise<readonly LockedRecord[]> {
    if (!this.loaded) this.reload();
    return super.listInvalid();
  }

  override async put(record: KeyRecord): Promise<void> {
    const checked = checkedForWrite(record);
    this.withLock(() => {
      // Every other entry is written back exactly as it was, invalid ones included: the CLI
      // neither drops nor "repairs" what someone wrote by hand.
      const entries = this.readFile().filter((r) => !(typeof r === 'object' && r !== null && (r as { id?: unknown }).id === checked.id));
      entries.push({ ...checked });
      this.writeFile(entries);
      this.admit(entries);
    });
  }

  override async close(): Promise<void> {
    if (this.watching) unwatchFile(this.path);
    this.watching = false;
  }

  /** Re-reads the file; on a bad file the previous records keep serving. */
  reload(): void {
    try {
      this.admit(this.readFile());
      this.loaded = true;
      this.log?.debug({ path: this.path, keys: this.size() }, 'key store loaded');
    } catch (e) {
      this.log?.error({ path: this.path, err: (e as Error).message }, 'key store file unreadable; keeping the previous keys. Fix the file or restore it from backup');
      if (!this.loaded) throw e;
    }
  }

  /** The file's `keys` list as written, every entry unvalidated (admit() judges them one by one). */
  private readFile(): unknown[] {
    if (!existsSync(this.path)) return [];
    const doc = parse(readFileSync(this.path, 'utf8')) as { keys?: unknown } | null;
    const keys = doc?.keys ?? [];
    if (!Array.isArray(keys)) throw new Error(`${this.path}: "keys" must be a list`);
    return keys;
  }

  /**
   * Each entry against the key-record schema: a record that fails is locked out and logged by
   * its id, never partly used (a typo such as `status: Active` or `routes: orders` is not
   * guessed at); the others serve.
   */
  private admit(entries: unknown[]): void {
    const { records, locked } = admitKeyRecords(entries.map((raw, i) => ({ raw, position: `keys[${i}]` })));
    this.replaceAll(records, locked);
    this.lockedSaid = logLocked(this.log, this.invalid(), this.lockedSaid, { path: this.path });
  }

  private writeFile(records: unknown[]): void {
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
