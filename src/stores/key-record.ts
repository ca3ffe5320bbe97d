// The key-record schema: what every record of every key store (file, Redis) must be before any
// of it is trusted. A hand-edited record is read exactly or not at all: `routes: orders-internal-admin`
// (a string, not a list) or a scope with a space in it is not "close enough", it is an invalid
// record, and an invalid record is locked out (every request with its key is denied,
// `api_key_record_invalid`) and logged by id, never partly used.
import { isIPv4, isIPv6 } from 'node:net';
import type { Logger } from 'pino';
import { z } from 'zod';

export type KeyStatus = 'active' | 'revoked';

/**
 * Once a store serves a record, it is replaced when it changes, never edited in place (the api-key
 * verifier keeps one Identity per record object); served records are frozen. Every record a store loads
 * passed the key-record schema below; one that did not is locked out.
 */
export interface KeyRecord {
  id: string;
  /** hex SHA-256 of the whole key; the key itself is never stored. */
  hash: string;
  client_id: string;
  scopes: string[];
  /** Route names this key may be used on; absent means any route that accepts api-key. */
  routes?: string[];
  /** Source CIDRs this key may be used from; absent means anywhere. */
  cidrs?: string[];
  status: KeyStatus;
  created_at?: string;
  /** ISO time; absent means no expiry. */
  expires_at?: string;
  revoked_at?: string;
  /** The key this one replaced, for `keys rotate`. */
  rotated_from?: string;
  /** Who the key acts for (`x-user-id`); absent means the key is a client's, not a user's. */
  subject?: string;
  /** Attributes a policy reads as `identity.claims` (`keys create --metadata team=payments`). */
  metadata?: Record<string, string>;
}
const KEY_ID = /^[A-Za-z0-9_.:-]{1,128}$/;
/** RFC 6749 §3.3 scope-token: printable ASCII except space, `"` and `\`. */
const SCOPE_TOKEN = /^[\x21\x23-\x5b\x5d-\x7e]+$/;

/** A metadata name: usable as `identity.claims.<name>` in a condition and `claims.<name>` in a header rule. */
const METADATA_NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
/** Metadata is claims: printable, no control characters (they would reach headers and logs). */
const METADATA_VALUE = /^[^\x00-\x1f\x7f]{0,256}$/u;
export const MAX_METADATA_ENTRIES = 32;
const LONE_SURROGATE = /[\uD800-\uDFFF]/u;

const time = z
  .string()
  .refine((t) => !Number.isNaN(Date.parse(t)), 'must be an ISO 8601 time, e.g. 2027-01-31T00:00:00Z');

const cidr = z.string().refine((c) => {
  const [addr, bits, extra] = c.split('/');
  if (extra !== undefined) return false;
  const max = isIPv4(addr) ? 32 : isIPv6(addr) ? 128 : 0;
  if (!max) return false;
  return bits === undefined || (/^\d{1,3}$/.test(bits) && Number(bits) <= max);
}, 'must be an IP address or CIDR, e.g. 10.0.0.0/8 or 2001:db8::/32');

export const keyRecordSchema = z
  .object({
    id: z.string().regex(KEY_ID, 'letters, digits, _ . : - (1-128)'),
    hash: z.string().regex(/^[0-9a-f]{64}$/, 'must be the SHA-256 of the key, 64 lowercase hex digits'),
    client_id: z.string().regex(/^[A-Za-z0-9_.:@-]{1,128}$/, 'letters, digits, _ . : @ - (1-128)'),
    scopes: z
      .array(
        z.string().regex(SCOPE_TOKEN, 'one scope per entry, without spaces, quotes or backslashes (RFC 6749 §3.3)'),
      )
      .default([]),
    routes: z
      .array(z.string().regex(/^[A-Za-z0-9_.:-]+$/, 'a route name'))
      .min(1, 'an empty list grants no route: omit routes for any route')
      .optional(),
    cidrs: z.array(cidr).min(1, 'an empty list allows no source: omit cidrs for anywhere').optional(),
    status: z.enum(['active', 'revoked']),
    created_at: time.optional(),
    expires_at: time.optional(),
    revoked_at: time.optional(),
    rotated_from: z.string().regex(KEY_ID, 'a key id').optional(),
    subject: z
      .string()
      .regex(/^[\x21-\x7e]{1,256}$/, 'printable ASCII without spaces (1-256), e.g. svc-reports')
      .optional(),
    metadata: z
      .record(
        z.string().regex(METADATA_NAME, 'a name: a letter, then letters, digits, _ or - (1-64)'),
        z
          .string()
          .regex(METADATA_VALUE, 'a string of at most 256 characters without control characters')
          .refine((v) => !LONE_SURROGATE.test(v), 'not well-formed Unicode'),
      )
      .refine((m) => Object.keys(m).length <= MAX_METADATA_ENTRIES, `at most ${MAX_METADATA_ENTRIES} entries`)
      .optional(),
  })
  .strict();

/** A record that failed: no part of it is used. `hash` only when it was well-formed, to lock that key out. */
export interface LockedRecord {
  /** The record's id when it is a well-formed id, else undefined (logs then name the position). */
  id?: string;
  hash?: string;
  /** Where it came from, for the log: `keys[3]` (file) or the Redis hash field. */
  position: string;
  /** Schema problems, `path: message`, never a value from the record. */
  problems: string[];
}

/** One stored record: the record, frozen, or why it is locked out. */
export function validateKeyRecord(raw: unknown, position: string): { record: KeyRecord } | { locked: LockedRecord } {
  const r = keyRecordSchema.safeParse(raw);
  const obj = typeof raw === 'object' && raw !== null ? (raw as Record<string, unknown>) : {};
  if (r.success) {
    const record = r.data;
    Object.freeze(record.scopes);
    if (record.routes) Object.freeze(record.routes);
    if (record.cidrs) Object.freeze(record.cidrs);
    if (record.metadata) Object.freeze(record.metadata);
    return { record: Object.freeze(record) };
  }
  return {
    locked: {
      id: typeof obj.id === 'string' && KEY_ID.test(obj.id) ? obj.id : undefined,
      hash: typeof obj.hash === 'string' && /^[0-9a-f]{64}$/.test(obj.hash) ? obj.hash : undefined,
      position,
      problems: r.error.issues.map((i) => `${i.path.length ? i.path.join('.') : '(record)'}: ${i.message}`),
    },
  };
}

/** Validates a store's list, record by record. */
export function admitKeyRecords(entries: Array<{ raw: unknown; position: string }>): {
  records: KeyRecord[];
  locked: LockedRecord[];
} {
  const records: KeyRecord[] = [];
  const locked: LockedRecord[] = [];
  for (const { raw, position } of entries) {
    const v = validateKeyRecord(raw, position);
    if ('record' in v) records.push(v.record);
    else locked.push(v.locked);
  }
  return { records, locked };
}

/**
 * Records that are fine on their own but ambiguous together are locked out too: two records with
 * one hash (the same key: which grants apply?), a valid record sharing its hash with an invalid
 * one, or two records with one id.
 */
export function lockAmbiguous(
  records: readonly KeyRecord[],
  locked: readonly LockedRecord[],
): { records: KeyRecord[]; locked: LockedRecord[] } {
  const hashes = new Map<string, number>();
  const ids = new Map<string, number>();
  for (const r of records) {
    hashes.set(r.hash, (hashes.get(r.hash) ?? 0) + 1);
    ids.set(r.id, (ids.get(r.id) ?? 0) + 1);
  }
  const lockedHashes = new Set(locked.map((l) => l.hash));
  const out: KeyRecord[] = [];
  const more: LockedRecord[] = [];
  for (const r of records) {
    const problems: string[] = [];
    if (hashes.get(r.hash)! > 1) problems.push('hash: another record has the same hash (the same key)');
    if (lockedHashes.has(r.hash)) problems.push('hash: an invalid record has the same hash (the same key)');
    if (ids.get(r.id)! > 1) problems.push('id: another record has the same id');
    if (problems.length) more.push({ id: r.id, hash: r.hash, position: r.id, problems });
    else out.push(r);
  }
  return { records: out, locked: more.length ? [...locked, ...more] : [...locked] };
}

/**
 * Logs each locked record once (by id, or position, and problems), at error: a locked record is a key
 * that no longer works. Returns what has been said, for the next load. `where` says which store.
 */
export function logLocked(
  log: Logger | undefined,
  locked: readonly LockedRecord[],
  said: ReadonlySet<string>,
  where: Record<string, unknown>,
): Set<string> {
  const now = new Set<string>();
  for (const l of locked) {
    // By id where there is one: a rewrite of the file moves records, not their problems.
    const signature = `${l.id ?? l.position}\u0000${l.problems.join('\u0000')}`;
    now.add(signature);
    if (said.has(signature)) continue;
    log?.error(
      { ...where, key_id: l.id, position: l.position, problems: l.problems },
      'API key record is invalid and locked out: requests with this key are denied (401, reason api_key_record_invalid). Fix the record (see the problems) or recreate the key with portcullis keys',
    );
  }
  return now;
}

/** A position for a log line from an untrusted name (a Redis hash field): escaped and bounded. */
export function positionOf(name: string): string {
  const quoted = JSON.stringify(name);
  return quoted.length > 80 ? `${quoted.slice(0, 77)}…"` : quoted;
}
