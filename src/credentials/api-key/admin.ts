// Key lifecycle on top of any KeyStore: create (shown once), rotate (overlap window), revoke.
import { BlockList } from 'node:net';
import { generateApiKey, hashApiKey, newKeyId } from './format.ts';
import { validateKeyRecord } from '../../stores/key-record.ts';
import { isActive, type KeyRecord, type KeyStore } from '../../stores/keystore.ts';

/** Two active keys per client: the current one and the one being rotated to. */
export const MAX_ACTIVE_KEYS_PER_CLIENT = 2;

export class KeyAdminError extends Error {
  override name = 'KeyAdminError';
}

export interface CreateKeyOptions {
  clientId: string;
  scopes?: string[];
  routes?: string[];
  cidrs?: string[];
  expiresInSeconds?: number;
  /** Who the key acts for (x-user-id); without it the key has no subject. */
  subject?: string;
  /** Attributes for conditions and header rules (identity.claims). */
  metadata?: Record<string, string>;
  /** The config's routes: with them, `routes` must name routes that take API keys. */
  configRoutes?: ReadonlyArray<ConfigRoute>;
}

export interface ConfigRoute {
  name: string;
  public: boolean;
  auth?: readonly string[];
}

/**
 * A key limited to a route it can never be used on is always denied: a route that does not exist
 * (a typo), a public one (no credential is looked at) or one that does not accept api-key.
 */
export function validateKeyRoutes(routes: readonly string[], configRoutes: ReadonlyArray<ConfigRoute>): void {
  const usable = configRoutes.filter((r) => !r.public && r.auth?.includes('api-key')).map((r) => r.name);
  for (const name of routes) {
    const route = configRoutes.find((r) => r.name === name);
    const why = !route
      ? 'is not a route of this config'
      : route.public
        ? 'is public (no credential is checked there)'
        : 'does not accept api-key';
    if (!route || !usable.includes(name)) {
      throw new KeyAdminError(
        `--routes: "${name}" ${why}; routes that take API keys: ${usable.join(', ') || '(none)'}`,
      );
    }
  }
}

export interface CreatedKey {
  key: string;
  record: KeyRecord;
}

export function parseDuration(text: string): number {
  const m = /^(\d+)\s*(s|m|h|d|w)?$/.exec(text.trim());
  if (!m) throw new KeyAdminError(`"${text}" is not a duration: use e.g. 3600s, 30m, 12h, 30d, 2w`);
  const mult = { s: 1, m: 60, h: 3600, d: 86400, w: 604800 }[(m[2] ?? 's') as 's'];
  return Number(m[1]) * mult;
}

/**
 * `--metadata team=payments` entries: one name each (the first `=` splits). The values are checked
 * against the key-record schema with the rest of the record when it is stored.
 */
export function parseMetadata(entries: readonly string[]): Record<string, string> {
  const out: Record<string, string> = Object.create(null) as Record<string, string>;
  for (const e of entries) {
    const eq = e.indexOf('=');
    if (eq <= 0) throw new KeyAdminError(`--metadata "${e}": use name=value, e.g. --metadata team=payments`);
    const name = e.slice(0, eq);
    if (Object.hasOwn(out, name)) throw new KeyAdminError(`--metadata: "${name}" is given twice`);
    out[name] = e.slice(eq + 1);
  }
  return { ...out };
}

export function validateCidrs(cidrs: string[]): void {
  for (const c of cidrs) {
    const [addr, bits] = c.split('/');
    const type = addr.includes(':') ? 'ipv6' : 'ipv4';
    const max = type === 'ipv6' ? 128 : 32;
    const n = bits === undefined ? max : Number(bits);
    try {
      if (!Number.isInteger(n) || n < 0 || n > max) throw new Error();
      new BlockList().addSubnet(addr, n, type);
    } catch {
      throw new KeyAdminError(`"${c}" is not a CIDR (e.g. 10.0.0.0/8, 2001:db8::/32)`);
    }
  }
}

async function activeKeysOf(store: KeyStore, clientId: string, nowMs: number): Promise<KeyRecord[]> {
  return (await store.list()).filter((r) => r.client_id === clientId && isActive(r, nowMs));
}

export async function createKey(
  store: KeyStore,
  prefix: string,
  opts: CreateKeyOptions,
  nowMs = Date.now(),
): Promise<CreatedKey> {
  if (!/^[A-Za-z0-9_.:@-]{1,128}$/.test(opts.clientId))
    throw new KeyAdminError('client id: 1-128 of letters, digits, _ . : @ -');
  if (opts.cidrs) validateCidrs(opts.cidrs);
  if (opts.routes && opts.configRoutes) validateKeyRoutes(opts.routes, opts.configRoutes);
  for (const s of opts.scopes ?? [])
    if (!/^[\x21\x23-\x5b\x5d-\x7e]+$/.test(s))
      throw new KeyAdminError(`scope "${s}" has characters RFC 6749 does not allow`);
  const active = await activeKeysOf(store, opts.clientId, nowMs);
  if (active.length >= MAX_ACTIVE_KEYS_PER_CLIENT) {
    throw new KeyAdminError(
      `client "${opts.clientId}" already has ${active.length} active keys (${active.map((r) => r.id).join(', ')}); revoke one first`,
    );
  }
  const key = generateApiKey(prefix);
  const record: KeyRecord = {
    id: newKeyId(),
    hash: hashApiKey(key),
    client_id: opts.clientId,
    scopes: opts.scopes ?? [],
    ...(opts.routes?.length ? { routes: opts.routes } : {}),
    ...(opts.cidrs?.length ? { cidrs: opts.cidrs } : {}),
    ...(opts.subject !== undefined ? { subject: opts.subject } : {}),
    ...(opts.metadata && Object.keys(opts.metadata).length ? { metadata: opts.metadata } : {}),
    status: 'active',
    created_at: new Date(nowMs).toISOString(),
    ...(opts.expiresInSeconds ? { expires_at: new Date(nowMs + opts.expiresInSeconds * 1000).toISOString() } : {}),
  };
  // Every store refuses a record that fails the key-record schema; this says which option to fix.
  const checked = validateKeyRecord(record, record.id);
  if ('locked' in checked) throw new KeyAdminError(`the key was not created: ${checked.locked.problems.join('; ')}`);
  await store.put(record);
  return { key, record };
}

async function findById(store: KeyStore, id: string): Promise<KeyRecord> {
  const rec = (await store.list()).find((r) => r.id === id);
  if (rec) return rec;
  const invalid = (await store.listInvalid()).find((l) => l.id === id);
  if (invalid) {
    throw new KeyAdminError(
      `key "${id}" has an invalid record and is locked out (${invalid.problems.join('; ')}): fix or remove it in the store by hand, or create a new key`,
    );
  }
  throw new KeyAdminError(`no key with id "${id}" (see portcullis keys list)`);
}

export async function revokeKey(store: KeyStore, id: string, nowMs = Date.now()): Promise<KeyRecord> {
  const rec = await findById(store, id);
  const updated: KeyRecord = { ...rec, status: 'revoked', revoked_at: new Date(nowMs).toISOString() };
  await store.put(updated);
  return updated;
}

/** A new key for the same client and grants. The old key stays valid until revoked, or for `graceSeconds`. */
export async function rotateKey(
  store: KeyStore,
  prefix: string,
  id: string,
  graceSeconds?: number,
  nowMs = Date.now(),
): Promise<CreatedKey & { old: KeyRecord }> {
  const old = await findById(store, id);
  if (!isActive(old, nowMs)) throw new KeyAdminError(`key "${id}" is not active; create a new key instead`);
  const active = await activeKeysOf(store, old.client_id, nowMs);
  if (active.length >= MAX_ACTIVE_KEYS_PER_CLIENT) {
    throw new KeyAdminError(
      `client "${old.client_id}" already has ${active.length} active keys; revoke the one not in use first`,
    );
  }
  const key = generateApiKey(prefix);
  const record: KeyRecord = {
    ...old,
    id: newKeyId(),
    hash: hashApiKey(key),
    created_at: new Date(nowMs).toISOString(),
    rotated_from: old.id,
  };
  delete record.revoked_at;
  await store.put(record);
  let oldOut = old;
  if (graceSeconds !== undefined) {
    const graceEnd = nowMs + graceSeconds * 1000;
    if (!old.expires_at || Date.parse(old.expires_at) > graceEnd) {
      oldOut = { ...old, expires_at: new Date(graceEnd).toISOString() };
      await store.put(oldOut);
    }
  }
  return { key, record, old: oldOut };
}
