// An API key's `subject` and `metadata` (issue: policy beyond scopes): the identity has a subject
// only when the record names one (x-user-id is never the client id), and its claims are the
// record's metadata. Both are stored by every store and validated like the rest of the record.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { createKey, KeyAdminError, parseMetadata, rotateKey } from '../../src/credentials/api-key/admin.ts';
import { verifyApiKey } from '../../src/credentials/api-key/verifier.ts';
import { FileKeyStore } from '../../src/stores/file-keystore.ts';
import type { KeyStore } from '../../src/stores/keystore.ts';
import { MemoryKeyStore } from '../../src/stores/memory-keystore.ts';
import { tempDir } from '../support/service.ts';

const NOW = Date.parse('2026-12-01T00:00:00Z');

const stores: Array<[string, () => KeyStore]> = [
  ['memory', () => new MemoryKeyStore()],
  ['file', () => FileKeyStore.init(join(tempDir(), 'keys.yaml'))],
];

describe.each(stores)('API key subject and metadata (%s store)', (_name, open) => {
  it('a key without a subject has none (not its client id); its claims are an empty map', async () => {
    const store = open();
    const { key } = await createKey(store, 'pcl', { clientId: 'partner-a', scopes: ['orders:read'] }, NOW);
    const id = await verifyApiKey(key, 'pcl', store, 'orders', '10.0.0.1', NOW);
    expect(id.subject).toBeUndefined();
    expect(id.clientId).toBe('partner-a');
    expect(id.claims).toEqual({});
  });

  it('subject and metadata become identity.subject and identity.claims, frozen; rotate keeps them', async () => {
    const store = open();
    const { key, record } = await createKey(
      store,
      'pcl',
      { clientId: 'reports', subject: 'svc-reports', metadata: { team: 'payments', tier: 'gold' } },
      NOW,
    );
    const stored = (await store.list()).find((r) => r.id === record.id)!;
    expect(stored.subject).toBe('svc-reports');
    expect(stored.metadata).toEqual({ team: 'payments', tier: 'gold' });
    const id = await verifyApiKey(key, 'pcl', store, 'orders', '10.0.0.1', NOW);
    expect(id.subject).toBe('svc-reports');
    expect(id.claims).toEqual({ team: 'payments', tier: 'gold' });
    expect(Object.isFrozen(id.claims)).toBe(true);
    const rotated = await rotateKey(store, 'pcl', record.id, undefined, NOW);
    const id2 = await verifyApiKey(rotated.key, 'pcl', store, 'orders', '10.0.0.1', NOW);
    expect(id2.subject).toBe('svc-reports');
    expect(id2.claims).toEqual({ team: 'payments', tier: 'gold' });
  });

  it.each([
    [{ subject: 'svc reports' }, /subject/],
    [{ subject: '' }, /subject/],
    [{ metadata: { team: 'a\r\nx-admin: 1' } }, /metadata\.team/],
    [{ metadata: { '9team': 'a' } }, /metadata/],
    [{ metadata: { team: 'x'.repeat(257) } }, /metadata\.team/],
  ])('refuses %j before anything is stored', async (extra, message) => {
    const store = open();
    await expect(createKey(store, 'pcl', { clientId: 'partner-z', ...extra }, NOW)).rejects.toThrow(message);
    expect(await store.list()).toEqual([]);
  });
});

describe('--metadata name=value', () => {
  it('splits at the first =, refuses a missing name or a repeated one', () => {
    expect(parseMetadata(['team=payments', 'q=a=b', 'empty='])).toEqual({ team: 'payments', q: 'a=b', empty: '' });
    expect(() => parseMetadata(['team'])).toThrow(KeyAdminError);
    expect(() => parseMetadata(['=x'])).toThrow(KeyAdminError);
    expect(() => parseMetadata(['team=a', 'team=b'])).toThrow(/twice/);
  });

  it('the file store writes them to keys.yaml as plain fields', async () => {
    const file = join(tempDir(), 'keys.yaml');
    const store = FileKeyStore.init(file);
    await createKey(store, 'pcl', { clientId: 'c', subject: 'svc-x', metadata: { tier: 'gold' } }, NOW);
    const text = readFileSync(file, 'utf8');
    expect(text).toMatch(/subject: svc-x/);
    expect(text).toMatch(/metadata:\n\s+tier: gold/);
  });
});
