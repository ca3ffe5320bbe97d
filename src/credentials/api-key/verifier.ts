// The api-key verifier: checksum (no I/O), hash, store lookup, lifecycle, grants.
import { BlockList, isIPv4, isIPv6 } from 'node:net';
import type { CredentialVerifier } from '../../core/deps.ts';
import { ForbiddenCredentialError, InvalidCredentialError } from '../../core/errors.ts';
import { newIdentity } from '../../core/identity.ts';
import type { RouteRule } from '../../core/policy.ts';
import type { AuthzRequest, Identity } from '../../core/types.ts';
import { Memo } from '../../plumbing/memo.ts';
import { isExpired, type KeyRecord, type KeyStore } from '../../stores/keystore.ts';
import { hashApiKey, isWellFormedApiKey } from './format.ts';

// Keyed by frozen key records: stores replace a record when it changes (revoke, rotate, reload),
// never edit it (KeyRecord), so what is derived from a record is always the current record's.
const RECORDS_KEPT = 16_384;

const blockLists = new Memo<KeyRecord, BlockList>(RECORDS_KEPT);

function blockListOf(record: KeyRecord): BlockList {
  let bl = blockLists.get(record);
  if (!bl) {
    bl = new BlockList();
    for (const c of record.cidrs ?? []) {
      const [addr, bits] = c.split('/');
      const type = addr.includes(':') ? 'ipv6' : 'ipv4';
      try {
        bl.addSubnet(addr, bits === undefined ? (type === 'ipv6' ? 128 : 32) : Number(bits), type);
      } catch {
        // A malformed CIDR grants nothing; the key is then usable from nowhere, which denies.
      }
    }
    blockLists.set(record, bl);
  }
  return bl;
}

export function ipAllowed(record: KeyRecord, ip: string): boolean {
  if (!record.cidrs?.length) return true;
  let addr = ip;
  if (addr.startsWith('::ffff:') && isIPv4(addr.slice(7))) addr = addr.slice(7);
  const type = isIPv4(addr) ? 'ipv4' : isIPv6(addr) ? 'ipv6' : undefined;
  if (!type) return false;
  return blockListOf(record).check(addr, type);
}

// One Identity per key record, made the first time the record is used: the identity is always the
// one of the record the store holds now, and the same object from Check to Check (what the identity
// header and allow-bytes memos are keyed by).
const identities = new Memo<KeyRecord, Identity>(RECORDS_KEPT);

function identityOf(record: KeyRecord): Identity {
  let id = identities.get(record);
  if (!id) {
    // A subject only when the record names one: the client id is not a user, and x-user-id
    // carrying it could be taken for one by an upstream.
    id = newIdentity('api-key', {
      subject: record.subject,
      clientId: record.client_id,
      scopes: record.scopes,
      keyId: record.id,
      expiresAt: record.expires_at ? Math.floor(Date.parse(record.expires_at) / 1000) : undefined,
      // Bounded by the key-record schema (entries, name and value lengths): no claim limits needed.
      claims: record.metadata ?? {},
    });
    identities.set(record, id);
  }
  return id;
}

/**
 * Returns the key's identity, or throws: InvalidCredentialError (401) for a key that is not
 * valid, ForbiddenCredentialError (403) for a valid key used on the wrong route or from the
 * wrong address, DependencyUnavailableError (503) from the store.
 */
export async function verifyApiKey(
  key: string,
  prefix: string,
  store: KeyStore,
  routeName: string,
  sourceIp: string,
  nowMs: number,
): Promise<Identity> {
  if (!isWellFormedApiKey(key, prefix)) throw new InvalidCredentialError('api_key_malformed', 'The API key is invalid');
  const record = await store.findByHash(hashApiKey(key));
  if (!record) throw new InvalidCredentialError('api_key_unknown', 'The API key is invalid');
  if (record.status !== 'active') throw new InvalidCredentialError('api_key_revoked', 'The API key is invalid');
  if (isExpired(record, nowMs)) throw new InvalidCredentialError('api_key_expired', 'The API key is invalid');
  const identity = identityOf(record);
  if (record.routes?.length && !record.routes.includes(routeName)) {
    throw new ForbiddenCredentialError('api_key_route_not_allowed', identity);
  }
  if (!ipAllowed(record, sourceIp)) throw new ForbiddenCredentialError('api_key_source_not_allowed', identity);
  return identity;
}

export class ApiKeyVerifier implements CredentialVerifier {
  constructor(
    private readonly prefix: string,
    private readonly store: KeyStore,
    private readonly now: () => number,
  ) {}

  verify(key: string, _request: AuthzRequest, route: RouteRule, sourceIp: string): Promise<Identity> {
    return verifyApiKey(key, this.prefix, this.store, route.name, sourceIp, this.now());
  }
}
