// File key store: a YAML file of hashed key records. The CLI edits it (locked, atomic rename);
// a running server polls it and swaps its in-memory copy, so changes apply within seconds.
// The file must exist: a missing file is a mistake (a typo in the path, a volume not mounted), never
// an empty store. `portcullis keys init` creates an empty one; `createFrom` seeds it from another file.
import {
  closeSync,
  existsSync,
  linkSync,
  openSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  unwatchFile,
  watchFile,
  writeFileSync,
} from 'node:fs';
import { parse, stringify } from 'yaml';
import type { Logger } from 'pino';
import { admitKeyRecords, logLocked, type LockedRecord } from './key-record.ts';
import type { KeyRecord } from './keystore.ts';
import { checkedForWrite, MemoryKeyStore } from './memory-keystore.ts';

const HEADER = '# Portcullis API keys: SHA-256 hashes only, never the keys. Managed with `portcullis keys`.\n';

/** A key store file that is missing, unreadable or malformed. The message names the file. */
export class KeyFileError extends Error {
  override name = 'KeyFileError';
  constructor(
    readonly path: string,
    readonly kind: 'missing' | 'unreadable' | 'malformed',
    message: string,
  ) {
    super(message);
  }
}

export interface FileKeyStoreOptions {
  /** How often a running server looks for changes. */
  pollMs?: number;
  /** When the file does not exist, create it as a copy of this one (credentials.api_key.store.create_from). */
  createFrom?: string;
}

export class FileKeyStore extends MemoryKeyStore {
  private loaded = false;
  private watching = false;
  private lockedSaid: ReadonlySet<string> = new Set();
  private readonly pollMs: number;
  private readonly createFrom?: string;

  constructor(
    readonly path: string,
    private readonly log?: Logger,
    opts: FileKeyStoreOptions = {},
  ) {
    super();
    this.pollMs = opts.pollMs ?? 1000;
    this.createFrom = opts.createFrom;
  }

  /** Creates an empty store file (refusing to replace one that exists) and returns its store. */
  static init(path: string, log?: Logger): FileKeyStore {
    try {
      writeFileSync(path, `${HEADER}keys: []\n`, { mode: 0o600, flag: 'wx' });
      return new FileKeyStore(path, log);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'EEXIST') throw new KeyFileError(path, 'unreadable', `${path} already exists; nothing to do`);
      throw new KeyFileError(path, 'unreadable', `cannot create ${path}: ${code ?? (e as Error).message}`);
    }
  }

  /**
   * The entries of a key store file as written (each is judged against the key-record schema when a
   * store admits it); throws KeyFileError when the file is missing, unreadable or malformed.
   */
  static read(path: string): unknown[] {
    return new FileKeyStore(path).readFile();
  }

  /** With createFrom: makes the file from it if it does not exist (never replaces one). */
  private ensureFile(): void {
    if (!this.createFrom || existsSync(this.path)) return;
    const records = FileKeyStore.read(this.createFrom);
    // Written aside, then linked into place: link() fails if the file appeared meanwhile (another
    // process made it first), and a reader never sees a half-written file.
    const tmp = `${this.path}.${process.pid}.tmp`;
    try {
      writeFileSync(tmp, HEADER + stringify({ keys: records }), { mode: 0o600 });
      linkSync(tmp, this.path);
      this.log?.info(
        { path: this.path, from: this.createFrom, keys: records.length },
        'key store created from credentials.api_key.store.create_from',
      );
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST')
        throw new KeyFileError(
          this.path,
          'unreadable',
          `cannot create ${this.path} from ${this.createFrom}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        );
    } finally {
      try {
        unlinkSync(tmp);
      } catch {
        // Not written (writeFileSync failed), or not removable: a leftover .tmp file is never read.
      }
    }
  }

  override async start(): Promise<void> {
    this.ensureFile();
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
    if (!this.loaded) {
      this.ensureFile();
      this.reload();
    }
    return super.list();
  }

  override async listInvalid(): Promise<readonly LockedRecord[]> {
    if (!this.loaded) this.reload();
    return super.listInvalid();
  }

  override async put(record: KeyRecord): Promise<void> {
    this.ensureFile();
    const checked = checkedForWrite(record);
    this.withLock(() => {
      // Every other entry is written back exactly as it was, invalid ones included: the CLI
      // neither drops nor "repairs" what someone wrote by hand.
      const entries = this.readFile().filter(
        (r) => !(typeof r === 'object' && r !== null && (r as { id?: unknown }).id === checked.id),
      );
      entries.push({ ...checked });
      this.writeFile(entries);
      this.admit(entries);
    });
  }

  override async close(): Promise<void> {
    if (this.watching) unwatchFile(this.path);
    this.watching = false;
  }

  /**
   * Re-reads the file. Once loaded, a bad file is logged and the previous records keep serving;
   * before the first load there is nothing to keep, so the error goes to the caller (start fails).
   */
  reload(): void {
    try {
      this.admit(this.readFile());
      this.loaded = true;
      this.log?.debug({ path: this.path, keys: this.size() }, 'key store loaded');
    } catch (e) {
      if (!this.loaded) throw e;
      this.log?.error(
        { path: this.path, err: (e as Error).message },
        'key store file unreadable; keeping the previous keys. Fix the file or restore it from backup',
      );
    }
  }

  /** The file's `keys` list as written, every entry unvalidated (admit() judges them one by one). */
  private readFile(): unknown[] {
    let text: string;
    try {
      text = readFileSync(this.path, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOENT') throw new KeyFileError(this.path, 'missing', `${this.path} does not exist`);
      throw new KeyFileError(this.path, 'unreadable', `cannot read ${this.path}: ${code ?? (e as Error).message}`);
    }
    let doc: { keys?: unknown } | null;
    try {
      doc = parse(text) as { keys?: unknown } | null;
    } catch (e) {
      throw new KeyFileError(
        this.path,
        'malformed',
        `${this.path} is not valid YAML: ${(e as Error).message.split('\n')[0]}`,
      );
    }
    // An empty file is an empty store; anything else must be a mapping with a `keys` list (a typo in
    // that one name would otherwise empty the store).
    if (doc !== null && (typeof doc !== 'object' || Array.isArray(doc) || !('keys' in doc))) {
      throw new KeyFileError(
        this.path,
        'malformed',
        `${this.path}: expected a mapping with a "keys" list (keys: [] for none)`,
      );
    }
    const keys = doc?.keys ?? [];
    if (!Array.isArray(keys)) throw new KeyFileError(this.path, 'malformed', `${this.path}: "keys" must be a list`);
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
        } catch {
          // The lock went away meanwhile (its writer finished): the next openSync takes it.
        }
        if (Date.now() > deadline)
          throw new Error(`${lock} is held by another writer; remove it if no portcullis keys command is running`, {
            cause: e,
          });
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
