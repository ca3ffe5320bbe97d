// Redis key store: the records every replica shares, with a local copy for the hot path.
//
// Layout (P = redis.key_prefix; the {apikeys} hash tag keeps both keys in one Cluster slot):
//   P{apikeys}           hash   key id -> JSON KeyRecord (SHA-256 hash of the key, never the key)
//   P{apikeys}:version   string counter, incremented by every write
//   Papikeys:changed     pub/sub channel, message "<version> <key id>"
//
// Each replica loads the whole hash at start and then keeps it current three ways:
//   1. pub/sub: a write's message makes every replica fetch that one record (milliseconds);
//   2. a version check every second: a missed message (subscriber reconnecting) shows up as a
//      version the copy does not reflect, and the whole copy is reloaded (≤ ~1 s);
//   3. a full reload every resync_seconds, and on every reconnect, whatever the version says.
// So a revocation reaches every replica within 2 s even when a pub/sub message is lost.
//
// Lookups never touch Redis. Redis down: keys in the copy keep serving (revoked ones stay revoked);
// a key not in the copy cannot be ruled out, so it is 503, not 401.
import type { Logger } from 'pino';
import { DependencyUnavailableError } from '../../core/errors.ts';
import { logLocked, positionOf, validateKeyRecord, type LockedRecord } from '../key-record.ts';
import type { KeyRecord } from '../keystore.ts';
import { checkedForWrite, MemoryKeyStore } from '../memory-keystore.ts';
import { REDIS_RETRY_AFTER_SECONDS, type RedisClient, type RedisConnection } from './connection.ts';
import type { RedisMetrics } from './metrics.ts';
import { defineScript } from './script.ts';

const VERSION_POLL_MS = 1000;

// One round trip, atomic: the record, the version bump and the notification cannot be separated.
const PUT_LUA = `
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
local v = redis.call('INCR', KEYS[2])
redis.call('PUBLISH', ARGV[3], v .. ' ' .. ARGV[1])
return v
`;

export interface RedisKeyStoreOptions {
  resyncSeconds: number;
  log: Logger;
  metrics?: RedisMetrics;
  /** Close the connection with the store (the CLI's own connection). */
  ownsConnection?: boolean;
}

/**
 * One stored record (the hash field `id`, its JSON value) against the key-record schema: the
 * record, or why it is locked out. Nothing of a failing record is used (no defaults filled in,
 * no status guessed).
 */
export function parseStoredRecord(id: string, json: string): { record: KeyRecord } | { locked: LockedRecord } {
  const position = positionOf(id);
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    return { locked: { position, problems: ['(record): not JSON'] } };
  }
  const v = validateKeyRecord(raw, position);
  if ('record' in v && v.record.id !== id) {
    return {
      locked: {
        id: v.record.id,
        hash: v.record.hash,
        position,
        problems: ['id: differs from the Redis hash field that holds the record'],
      },
    };
  }
  return v;
}

/**
 * The latest local copy per (Redis target, prefix) in this process. A config reload builds a new
 * store; it starts from the copy the previous one had, so a reload (even while Redis is down)
 * never turns known keys into 503s while the new store connects and reloads.
 */
const latestCopies = new Map<string, { store: RedisKeyStore }>();

export class RedisKeyStore extends MemoryKeyStore {
  readonly hashKey: string;
  readonly versionKey: string;
  readonly channel: string;
  private readonly putScript: (...args: Array<string | number>) => Promise<unknown>;
  private loaded = false;
  private started = false;
  /** Version of the data the local copy reflects. */
  private version = -1;
  private needFull = true;
  private lastFullMs = 0;
  private syncing?: Promise<void>;
  private changes: Promise<void> = Promise.resolve();
  private timer?: NodeJS.Timeout;
  private offReady?: () => void;
  private lastFailureLog = 0;
  private lockedSaid: ReadonlySet<string> = new Set();
  private readonly onMessage = (channel: string, message: string) => {
    if (channel === this.channel) this.changes = this.changes.then(() => this.applyChange(message));
  };
  private readonly onSubscriberReady = () => {
    // Messages may have been missed while the subscriber was away.
    this.needFull = true;
    void this.subscribe();
    void this.sync();
  };

  constructor(
    readonly conn: RedisConnection,
    private readonly opts: RedisKeyStoreOptions,
  ) {
    super();
    this.hashKey = conn.key('{apikeys}');
    this.versionKey = conn.key('{apikeys}:version');
    this.channel = conn.key('apikeys:changed');
    this.putScript = defineScript(conn.client, 'portcullisKeyPut', 2, PUT_LUA);
  }

  /** Server side: subscribe, load, and keep the local copy current. Waits for Redis at most connect_timeout_ms. */
  override async start(): Promise<void> {
    if (this.started) return;
    this.started = true;
    const prior = latestCopies.get(this.copyId)?.store;
    if (prior && prior !== this && prior.loaded) {
      this.replaceAll(prior.records, prior.invalidRecords);
      this.version = prior.version;
      this.loaded = true; // serves the previous copy; needFull makes the first sync reload it
    }
    latestCopies.set(this.copyId, { store: this });
    const sub = this.conn.subscriber();
    sub.on('message', this.onMessage);
    sub.on('ready', this.onSubscriberReady);
    void this.subscribe();
    this.offReady = this.conn.onReady(() => {
      this.needFull = true;
      void this.sync();
    });
    this.timer = setInterval(() => void this.sync(), VERSION_POLL_MS);
    this.timer.unref();
    // Wait briefly for the first load, so a process (or reload) with Redis up is ready at once;
    // with Redis down, start anyway: readiness waits, and ioredis keeps reconnecting.
    if (this.loaded) void this.sync();
    else
      await Promise.race([
        this.firstLoad(),
        new Promise((r) => setTimeout(r, this.conn.config.connect_timeout_ms).unref()),
      ]);
  }

  private async firstLoad(): Promise<void> {
    await this.conn.waitUntilReady(this.conn.config.connect_timeout_ms).catch(() => {});
    await this.sync();
  }

  private get copyId(): string {
    return `${this.conn.target}\0${this.conn.prefix}`;
  }

  override isReady(): boolean {
    return this.loaded;
  }

  override async findByHash(hash: string): Promise<KeyRecord | undefined> {
    const r = this.byHash.get(hash) ?? this.lockedOut(hash);
    if (r) return r;
    // Not in the copy: only a complete, current copy can say "no such key".
    if (!this.loaded || !this.conn.isUp())
      throw new DependencyUnavailableError('keystore_redis_unavailable', REDIS_RETRY_AFTER_SECONDS);
    return undefined;
  }

  override async list(): Promise<KeyRecord[]> {
    if (this.loaded) return super.list();
    // The CLI (never started): read Redis directly.
    await this.conn.waitUntilReady(this.conn.config.connect_timeout_ms);
    const { records } = await this.readAll();
    return records;
  }

  /** Locked-out records; the CLI (never started) reads them from Redis. */
  override async listInvalid(): Promise<readonly LockedRecord[]> {
    if (this.loaded) return this.invalid();
    await this.conn.waitUntilReady(this.conn.config.connect_timeout_ms);
    return (await this.readAll()).invalid;
  }

  override async put(input: KeyRecord): Promise<void> {
    const record = checkedForWrite(input);
    await this.conn.waitUntilReady(this.started ? 0 : this.conn.config.connect_timeout_ms).catch((e) => {
      throw this.started ? new DependencyUnavailableError('keystore_redis_unavailable', REDIS_RETRY_AFTER_SECONDS) : e;
    });
    await this.conn.run('keystore_put', () =>
      this.putScript(this.hashKey, this.versionKey, record.id, JSON.stringify(record), this.channel),
    );
    if (this.loaded) this.upsert(record.id, { record });
  }

  override async close(): Promise<void> {
    if (latestCopies.get(this.copyId)?.store === this) latestCopies.delete(this.copyId);
    if (this.timer) clearInterval(this.timer);
    this.offReady?.();
    if (this.started) {
      const sub = this.conn.subscriber();
      sub.off('message', this.onMessage);
      sub.off('ready', this.onSubscriberReady);
    }
    if (this.opts.ownsConnection) await this.conn.close();
  }

  private async subscribe(): Promise<void> {
    try {
      await this.conn.subscriber().subscribe(this.channel);
    } catch {
      // Retried on the subscriber's next 'ready'; the version check covers the gap.
    }
  }

  /** Version check, and a full reload when needed. One at a time. */
  sync(): Promise<void> {
    return (this.syncing ??= this.doSync().finally(() => (this.syncing = undefined)));
  }

  private async doSync(): Promise<void> {
    if (!this.conn.isUp()) return;
    try {
      const full = this.needFull || !this.loaded || Date.now() - this.lastFullMs >= this.opts.resyncSeconds * 1000;
      if (!full) {
        const v = Number((await this.conn.run('keystore_version', (c) => c.get(this.versionKey))) ?? 0);
        if (v === this.version) return this.synced('unchanged');
      }
      await this.fullLoad();
    } catch (e) {
      this.opts.metrics?.keyStoreSyncs.inc({ result: 'failed' });
      const now = Date.now();
      if (now - this.lastFailureLog > 10_000) {
        this.lastFailureLog = now;
        this.opts.log.warn(
          { redis: this.conn.target, err: (e as Error).message },
          'API key sync from Redis failed; serving the last copy and retrying every second',
        );
      }
    }
  }

  private async fullLoad(): Promise<void> {
    const needFullBefore = this.needFull;
    this.needFull = false;
    try {
      const { records, invalid, version } = await this.readSnapshot();
      if (records === undefined) {
        // Changes kept landing while snapshots were in flight: keep the copy (it has them) and
        // let the next version check, a second from now, load again.
        this.needFull = true;
        return;
      }
      this.replaceAll(records, invalid);
      this.lockedSaid = logLocked(this.opts.log, this.invalid(), this.lockedSaid, { redis_key: this.hashKey });
      this.version = version;
      this.lastFullMs = Date.now();
      if (!this.loaded)
        this.opts.log.info({ keys: records.length, redis: this.conn.target }, 'API keys loaded from Redis');
      this.loaded = true;
      this.synced('full');
    } catch (e) {
      this.needFull ||= needFullBefore;
      throw e;
    }
  }

  /**
   * A snapshot newer than every change already applied. A change that pub/sub delivered while the
   * snapshot was in flight (a key created or revoked just after Redis answered) is newer than the
   * snapshot: replacing the copy with it would undo that change until the next version check.
   * So such a snapshot is read again (at most 3 times). A snapshot older than the copy with no
   * change applied meanwhile is Redis going back (a restart without its data), and it is taken.
   */
  private async readSnapshot(): Promise<{ records?: KeyRecord[]; invalid: LockedRecord[]; version: number }> {
    for (let attempt = 0; attempt < 3; attempt++) {
      const applied = this.version;
      const snapshot = await this.readAll();
      if (this.version === applied || snapshot.version >= this.version) return snapshot;
    }
    return { invalid: [], version: this.version };
  }

  /** The whole hash and its version, read atomically. */
  private async readAll(): Promise<{ records: KeyRecord[]; invalid: LockedRecord[]; version: number }> {
    const res = await this.conn.run('keystore_load', (c: RedisClient) =>
      c.multi().get(this.versionKey).hgetall(this.hashKey).exec(),
    );
    if (!res) throw new Error('key store load transaction aborted');
    const [[verr, v], [herr, h]] = res as [[Error | null, string | null], [Error | null, Record<string, string>]];
    if (verr) throw verr;
    if (herr) throw herr;
    const records: KeyRecord[] = [];
    const invalid: LockedRecord[] = [];
    for (const [id, json] of Object.entries(h ?? {})) {
      const parsed = parseStoredRecord(id, json);
      if ('record' in parsed) records.push(parsed.record);
      else invalid.push(parsed.locked);
    }
    return { records, invalid, version: Number(v ?? 0) };
  }

  private async applyChange(message: string): Promise<void> {
    if (!this.loaded) return;
    const space = message.indexOf(' ');
    const v = Number(message.slice(0, space));
    const id = message.slice(space + 1);
    if (!Number.isInteger(v) || !id) return;
    if (v <= this.version) return;
    try {
      const json = await this.conn.run('keystore_get', (c) => c.hget(this.hashKey, id));
      // The record now stored under this id replaces the old one, whatever it is: a valid record,
      // an invalid one (locked out, the old version not kept), or none (deleted).
      this.upsert(id, json ? parseStoredRecord(id, json) : undefined);
      if (v === this.version + 1) {
        this.version = v;
        this.synced('change');
      } else {
        // A gap: some other change was missed. Reload everything.
        this.needFull = true;
        void this.sync();
      }
    } catch {
      this.needFull = true;
    }
  }

  private upsert(field: string, next: { record: KeyRecord } | { locked: LockedRecord } | undefined): void {
    const position = positionOf(field);
    const records = this.records.filter((r) => r.id !== field);
    const invalid = this.invalidRecords.filter((l) => l.position !== position);
    if (next && 'record' in next) records.push(next.record);
    else if (next) invalid.push(next.locked);
    this.replaceAll(records, invalid);
    this.lockedSaid = logLocked(this.opts.log, this.invalid(), this.lockedSaid, { redis_key: this.hashKey });
  }

  private synced(result: 'full' | 'change' | 'unchanged'): void {
    this.opts.metrics?.keyStoreSyncs.inc({ result });
    this.opts.metrics?.keyStoreLastSync.set(Date.now() / 1000);
  }
}
