// File key store: a YAML file of hashed key records. The CLI edits it (locked, atomic rename);
// a running server polls it and swaps its in-memory copy, so changes apply within seconds.
// The file must exist: a missing file is a mistake (a typo in the path, a volume not mounted), never
// an empty store. `portcullis keys init` creates an empty one; `createFrom` seeds it from another file.
import { closeSync, existsSync, linkSync, openSync, readFileSync, renameSync, statSync, unlinkSync, unwatchFile, watchFile, writeFileSync } from 'node:fs';
import { parse, stringify } from 'yaml';
import type { Logger } from 'pino';
import type { KeyRecord } from './keystore.ts';
import { MemoryKeyStore } from './memory-keystore.ts';

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

  /** The records of a key store file; throws KeyFileError when it is missing, unreadable or malformed. */
  static read(path: string): KeyRecord[] {
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
      this.log?.info({ path: this.path, from: this.createFrom, keys: records.length }, 'key store created from credentials.api_key.store.create_from');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw new KeyFileError(this.path, 'unreadable', `cannot create ${this.path} from ${this.createFrom}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`);
    } finally {
      try {
        unlinkSync(tmp);
      } catch {}
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

  override async put(record: KeyRecord): Promise<void> {
    this.ensureFile();
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

  /**
   * Re-reads the file. Once loaded, a bad file is logged and the previous records keep serving;
   * before the first load there is nothing to keep, so the error goes to the caller (start fails).
   */
  reload(): void {
    try {
      this.replaceAll(this.readFile());
      this.loaded = true;
      this.log?.debug({ path: this.path, keys: this.size() }, 'key store loaded');
    } catch (e) {
      if (!this.loaded) throw e;
      this.log?.error({ path: this.path, err: (e as Error).message }, 'key store file unreadable; keeping the previous keys. Fix the file or restore it from backup');
    }
  }

  private readFile(): KeyRecord[] {
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
      throw new KeyFileError(this.path, 'malformed', `${this.path} is not valid YAML: ${(e as Error).message.split('\n')[0]}`);
    }
    // An empty file is an empty store; anything else must be a mapping with a `keys` list (a typo in
    // that one name would otherwise empty the store).
    if (doc !== null && (typeof doc !== 'object' || Array.isArray(doc) || !('keys' in doc))) {
      throw new KeyFileError(this.path, 'malformed', `${this.path}: expected a mapping with a "keys" list (keys: [] for none)`);
    }
    const keys = doc?.keys ?? [];
    if (!Array.isArray(keys)) throw new KeyFileError(this.path, 'malformed', `${this.path}: "keys" must be a list`);
    keys.forEach((k, i) => {
      if (!k || typeof k.id !== 'string' || typeof k.hash !== 'string' || !/^[0-9a-f]{64}$/.test(k.hash) || typeof k.client_id !== 'string') {
        throw new KeyFileError(this.path, 'malformed', `${this.path}: keys[${i}] needs id, client_id and a 64-hex-digit hash`);
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
