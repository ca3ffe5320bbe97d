// Key records read from a hand-edited keys.yaml: a status other than "active", or an expiry that
// cannot be read, must never let a key through (the Redis store reads records the same way).
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { generateApiKey, hashApiKey } from '../../src/credentials/apikey-format.ts';
import { verifyApiKey } from '../../src/credentials/apikey.ts';
import { InvalidCredentialError } from '../../src/core/errors.ts';
import { FileKeyStore } from '../../src/stores/file-keystore.ts';
import { isExpired } from '../../src/stores/keystore.ts';
import { tempDir } from '../support/service.ts';

const NOW = Date.parse('2026-12-01T00:00:00Z');

async function reasonFor(extra: string): Promise<string> {
  const key = generateApiKey('pcl');
  const file = join(tempDir(), 'keys.yaml');
  writeFileSync(file, `keys:\n  - id: key_a\n    hash: ${hashApiKey(key)}\n    client_id: partner-a\n    scopes: [orders:read]\n${extra}`);
  const store = new FileKeyStore(file);
  await store.start();
  try {
    await verifyApiKey(key, 'pcl', store, 'r', '10.0.0.1', NOW);
    return 'allowed';
  } catch (e) {
    return (e as InvalidCredentialError).reason;
  } finally {
    await store.close();
  }
}

describe('key records from a file', () => {
  it.each([
    ['    status: active\n', 'allowed'],
    ['    status: revoked\n', 'api_key_revoked'],
    ['    status: disabled\n', 'api_key_revoked'],
    ['    status: Active\n', 'api_key_revoked'],
    ['', 'api_key_revoked'],
    ['    status: active\n    expires_at: 2027-01-01T00:00:00Z\n', 'allowed'],
    ['    status: active\n    expires_at: 2026-11-30T00:00:00Z\n', 'api_key_expired'],
    ['    status: active\n    expires_at: next tuesday\n', 'api_key_expired'],
    ['    status: active\n    expires_at: 12345\n', 'api_key_expired'],
  ])('%j → %s', async (extra, expected) => {
    expect(await reasonFor(extra)).toBe(expected);
  });

  it('isExpired: no expiry never expires; an unreadable one always has', () => {
    const r = { id: 'k', hash: 'h', client_id: 'c', scopes: [], status: 'active' as const, created_at: '' };
    expect(isExpired(r, NOW)).toBe(false);
    expect(isExpired({ ...r, expires_at: 'garbage' }, NOW)).toBe(true);
    expect(isExpired({ ...r, expires_at: new Date(NOW).toISOString() }, NOW)).toBe(true);
    expect(isExpired({ ...r, expires_at: new Date(NOW + 1).toISOString() }, NOW)).toBe(false);
  });
});
