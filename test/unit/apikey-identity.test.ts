// API-key identities are made once per key record (src/credentials/api-key/verifier.ts): the same record
// gives the same frozen identity, and a changed record (stores replace records, never edit them)
// gives the new record's identity on the very next Check.
import { describe, expect, it } from 'vitest';
import { createKey, revokeKey } from '../../src/credentials/api-key/admin.ts';
import { verifyApiKey } from '../../src/credentials/api-key/verifier.ts';
import { InvalidCredentialError } from '../../src/core/errors.ts';
import { MemoryKeyStore } from '../../src/stores/memory-keystore.ts';

const NOW = Date.parse('2026-12-01T00:00:00Z');

describe('API-key identity', () => {
  it('one frozen identity per record, with frozen scopes the store cannot see changed', async () => {
    const store = new MemoryKeyStore();
    const { key, record } = await createKey(store, 'pcl', { clientId: 'partner-a', scopes: ['orders:read'] }, NOW);
    const a = await verifyApiKey(key, 'pcl', store, 'r', '10.0.0.1', NOW);
    const b = await verifyApiKey(key, 'pcl', store, 'r', '10.0.0.1', NOW);
    expect(b).toBe(a);
    expect(a).toEqual({
      method: 'api-key',
      subject: undefined, // the record names no subject: the client id is not one
      clientId: 'partner-a',
      scopes: ['orders:read'],
      keyId: record.id,
      issuer: undefined,
      expiresAt: undefined,
      claims: {},
    });
    expect(Object.isFrozen(a) && Object.isFrozen(a.scopes)).toBe(true);
    expect(() => (a.scopes as string[]).push('admin')).toThrow(TypeError);
    expect((await store.findByHash(record.hash))!.scopes).toEqual(['orders:read']);
  });

  it('a replaced record (new scopes, then revoked) is read fresh on the next Check', async () => {
    const store = new MemoryKeyStore();
    const { key, record } = await createKey(
      store,
      'pcl',
      { clientId: 'partner-b', scopes: ['orders:read'], expiresInSeconds: 3600 },
      NOW,
    );
    const before = await verifyApiKey(key, 'pcl', store, 'r', '10.0.0.1', NOW);
    expect(before.expiresAt).toBe(NOW / 1000 + 3600);
    await store.put({ ...record, scopes: ['orders:read', 'orders:write'] });
    const after = await verifyApiKey(key, 'pcl', store, 'r', '10.0.0.1', NOW);
    expect(after.scopes).toEqual(['orders:read', 'orders:write']);
    await revokeKey(store, record.id, NOW);
    await expect(verifyApiKey(key, 'pcl', store, 'r', '10.0.0.1', NOW)).rejects.toThrow(InvalidCredentialError);
  });
});
