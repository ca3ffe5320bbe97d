// Key records read from a hand-edited keys.yaml: every record is checked against the key-record
// schema when loaded. A record that fails is locked out (its key denied: api_key_record_invalid)
// and logged by id; nothing of it is guessed at or partly used (the Redis store reads records the
// same way: test/redis/keystore.test.ts).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { createKey, revokeKey } from '../../src/credentials/api-key/admin.ts';
import { generateApiKey, hashApiKey } from '../../src/credentials/api-key/format.ts';
import { verifyApiKey } from '../../src/credentials/api-key/verifier.ts';
import type { InvalidCredentialError } from '../../src/core/errors.ts';
import { FileKeyStore } from '../../src/stores/file-keystore.ts';
import { isExpired } from '../../src/stores/keystore.ts';
import { tempDir } from '../support/service.ts';

const NOW = Date.parse('2026-12-01T00:00:00Z');

const reason = (key: string, store: FileKeyStore, route = 'orders', ip = '10.0.0.1') =>
  verifyApiKey(key, 'pcl', store, route, ip, NOW).then(
    () => 'allowed',
    (e: InvalidCredentialError) => e.reason,
  );

async function reasonFor(lines: string, route = 'orders'): Promise<string> {
  const key = generateApiKey('pcl');
  const file = join(tempDir(), 'keys.yaml');
  writeFileSync(file, `keys:\n  - id: key_a\n    hash: ${hashApiKey(key)}\n    client_id: partner-a\n${lines}`);
  const store = new FileKeyStore(file);
  await store.start();
  try {
    return await reason(key, store, route);
  } finally {
    await store.close();
  }
}

describe('key records from a file', () => {
  it.each([
    ['    scopes: [orders:read]\n    status: active\n', 'allowed'],
    ['    status: active\n', 'allowed'],
    ['    scopes: [orders:read]\n    status: revoked\n', 'api_key_revoked'],
    ['    status: active\n    expires_at: 2027-01-01T00:00:00Z\n', 'allowed'],
    ['    status: active\n    expires_at: 2026-11-30T00:00:00Z\n', 'api_key_expired'],
    ['    status: active\n    routes: [orders]\n    cidrs: [10.0.0.0/8]\n', 'allowed'],
    // Not read exactly, so not read at all.
    ['    status: disabled\n', 'api_key_record_invalid'],
    ['    status: Active\n', 'api_key_record_invalid'],
    ['', 'api_key_record_invalid'],
    ['    status: active\n    expires_at: next tuesday\n', 'api_key_record_invalid'],
    ['    status: active\n    expires_at: 12345\n', 'api_key_record_invalid'],
    ['    status: active\n    expires_at:\n', 'api_key_record_invalid'],
    // A string where a list belongs: no substring test, no splitting.
    ['    status: active\n    routes: orders-internal-admin\n', 'api_key_record_invalid'],
    ['    status: active\n    routes: orders\n', 'api_key_record_invalid'],
    ['    status: active\n    routes: []\n', 'api_key_record_invalid'],
    ['    status: active\n    scopes: orders:read\n', 'api_key_record_invalid'],
    ['    status: active\n    scopes: [orders:read orders:write]\n', 'api_key_record_invalid'],
    ['    status: active\n    scopes: ["orders:read\\torders:write"]\n', 'api_key_record_invalid'],
    ['    status: active\n    scopes: [7]\n', 'api_key_record_invalid'],
    ['    status: active\n    cidrs: 10.0.0.0/8\n', 'api_key_record_invalid'],
    ['    status: active\n    cidrs: [10.0.0.0/33]\n', 'api_key_record_invalid'],
    ['    status: active\n    cidrs: [everywhere]\n', 'api_key_record_invalid'],
    ['    status: active\n    cidrs: []\n', 'api_key_record_invalid'],
    // A misspelt field is not ignored: `route:` would otherwise mean "any route".
    ['    status: active\n    route: [admin]\n', 'api_key_record_invalid'],
    ['    status: active\n    scope: [orders:read]\n', 'api_key_record_invalid'],
    // subject and metadata: read exactly, like the rest.
    ['    status: active\n    subject: svc-reports\n    metadata: { team: payments, tier: gold }\n', 'allowed'],
    ['    status: active\n    subject: ""\n', 'api_key_record_invalid'],
    ['    status: active\n    subject: "svc reports"\n', 'api_key_record_invalid'],
    ['    status: active\n    subject: [svc]\n', 'api_key_record_invalid'],
    ['    status: active\n    metadata: team=payments\n', 'api_key_record_invalid'],
    ['    status: active\n    metadata: { tier: 3 }\n', 'api_key_record_invalid'],
    ['    status: active\n    metadata: { tier: [gold] }\n', 'api_key_record_invalid'],
    ['    status: active\n    metadata: { "x y": gold }\n', 'api_key_record_invalid'],
    ['    status: active\n    metadata: { team: "pay\\r\\nx-admin: 1" }\n', 'api_key_record_invalid'],
    ['    status: active\n    metadata: { team: "\\ud800" }\n', 'api_key_record_invalid'],
    [`    status: active\n    metadata: { team: ${'a'.repeat(257)} }\n`, 'api_key_record_invalid'],
    [
      `    status: active\n    metadata: { ${Array.from({ length: 33 }, (_, i) => `m${i}: v`).join(', ')} }\n`,
      'api_key_record_invalid',
    ],
  ])('%j → %s', async (lines, expected) => {
    expect(await reasonFor(lines)).toBe(expected);
  });

  it('a client_id that is not a plain identifier locks the record out', async () => {
    for (const clientId of ['"bob, admin"', '"bob admin"', '12345', '"bøb"', '""']) {
      const key = generateApiKey('pcl');
      const file = join(tempDir(), 'keys.yaml');
      writeFileSync(
        file,
        `keys:\n  - { id: key_a, hash: ${hashApiKey(key)}, client_id: ${clientId}, status: active }\n`,
      );
      const store = new FileKeyStore(file);
      await store.start();
      expect(await reason(key, store), clientId).toBe('api_key_record_invalid');
    }
  });

  it('one bad record locks out only itself; two records of one key lock out both; all logged by id, once', async () => {
    const [good, bad, twin, upper] = [
      generateApiKey('pcl'),
      generateApiKey('pcl'),
      generateApiKey('pcl'),
      generateApiKey('pcl'),
    ];
    const file = join(tempDir(), 'keys.yaml');
    writeFileSync(
      file,
      `keys:
  - { id: key_good, hash: ${hashApiKey(good)}, client_id: a, scopes: [orders:read], status: active }
  - { id: key_bad, hash: ${hashApiKey(bad)}, client_id: b, routes: orders-internal-admin, status: active }
  - { id: key_twin1, hash: ${hashApiKey(twin)}, client_id: c, status: active }
  - { id: key_twin2, hash: ${hashApiKey(twin)}, client_id: d, scopes: [admin], status: active }
  - { id: key_upper, hash: ${hashApiKey(upper).toUpperCase()}, client_id: e, status: active }
  - just a string
`,
    );
    const lines: string[] = [];
    const store = new FileKeyStore(file, pino({ level: 'info' }, { write: (l: string) => void lines.push(l) }), {
      pollMs: 50,
    });
    await store.start();
    expect(await reason(good, store)).toBe('allowed');
    expect(await reason(bad, store)).toBe('api_key_record_invalid');
    expect(await reason(twin, store)).toBe('api_key_record_invalid');
    // A hash that is not the canonical hex cannot be matched at all: the key is unknown (and the record logged).
    expect(await reason(upper, store)).toBe('api_key_unknown');
    const logged = lines.map((l) => JSON.parse(l)).filter((l) => l.msg.startsWith('API key record is invalid'));
    expect(logged.map((l) => [l.key_id ?? null, l.position])).toEqual([
      ['key_bad', 'keys[1]'],
      ['key_upper', 'keys[4]'],
      [null, 'keys[5]'],
      ['key_twin1', 'key_twin1'],
      ['key_twin2', 'key_twin2'],
    ]);
    expect(logged[0]).toMatchObject({
      level: 50,
      path: file,
      problems: ['routes: Invalid input: expected array, received string'],
    });
    for (const l of lines) for (const k of [good, bad, twin, upper]) expect(l.includes(k)).toBe(false);
    expect(await store.listInvalid()).toHaveLength(5);
    expect((await store.list()).map((r) => r.id)).toEqual(['key_good']);

    // The CLI writing another record keeps every hand-written entry exactly as it was.
    const before = readFileSync(file, 'utf8');
    await revokeKey(store, 'key_good', NOW);
    const after = readFileSync(file, 'utf8');
    expect(after).toContain('routes: orders-internal-admin');
    expect(after).toContain('- just a string');
    expect(before).not.toContain('revoked_at');
    expect(await reason(bad, store)).toBe('api_key_record_invalid');
    expect(await reason(good, store)).toBe('api_key_revoked');
    // The admin commands say what is wrong with a locked record instead of "no such key".
    await expect(revokeKey(store, 'key_bad', NOW)).rejects.toThrow(
      /key "key_bad" has an invalid record and is locked out \(routes: /,
    );
    // A record with an id is not logged again for the same problems (one without an id is known
    // by its position only, which the rewrite moved).
    const again = lines
      .map((l) => JSON.parse(l))
      .filter((l) => l.msg.startsWith('API key record is invalid'))
      .slice(5);
    expect(again.map((l) => [l.key_id ?? null, l.position])).toEqual([[null, 'keys[4]']]);
    await store.close();
  });

  it('a record fixed by hand serves again at the next reload', async () => {
    const key = generateApiKey('pcl');
    const file = join(tempDir(), 'keys.yaml');
    const write = (routes: string) =>
      writeFileSync(
        file,
        `keys:\n  - { id: key_a, hash: ${hashApiKey(key)}, client_id: a, routes: ${routes}, status: active }\n`,
      );
    write('orders');
    const store = new FileKeyStore(file);
    await store.start();
    expect(await reason(key, store)).toBe('api_key_record_invalid');
    write('[orders]');
    store.reload();
    expect(await reason(key, store)).toBe('allowed');
    expect(await reason(key, store, 'orders-internal-admin')).toBe('api_key_route_not_allowed');
  });

  it('the stores refuse to write an invalid record', async () => {
    const store = FileKeyStore.init(join(tempDir(), 'keys.yaml'));
    await store.start();
    const { record } = await createKey(store, 'pcl', { clientId: 'acme' });
    await expect(store.put({ ...record, scopes: ['a b'] })).rejects.toThrow(
      /refusing to store an invalid key record .*scopes\.0/,
    );
    await expect(store.put({ ...record, routes: 'orders' as unknown as string[] })).rejects.toThrow(/routes/);
  });

  it('isExpired: no expiry never expires; an unreadable one always has', () => {
    const r = { id: 'k', hash: 'h', client_id: 'c', scopes: [], status: 'active' as const, created_at: '' };
    expect(isExpired(r, NOW)).toBe(false);
    expect(isExpired({ ...r, expires_at: 'garbage' }, NOW)).toBe(true);
    expect(isExpired({ ...r, expires_at: new Date(NOW).toISOString() }, NOW)).toBe(true);
    expect(isExpired({ ...r, expires_at: new Date(NOW + 1).toISOString() }, NOW)).toBe(false);
  });
});
