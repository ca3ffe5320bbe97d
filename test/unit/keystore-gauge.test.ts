// portcullis_keystore_keys reports the running key store's record count for every store type (it
// read 0 with the file store: only the Redis store set it), follows changes to the file, and follows
// a reload to another store. (The Redis store: test/redis/replicas.test.ts.)
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createKey } from '../../src/credentials/api-key/admin.ts';
import { FileKeyStore } from '../../src/stores/file-keystore.ts';
import { startService, tempDir, waitFor, type TestService } from '../support/service.ts';

const config = (store: string) => `
credentials:
  api_key: { headers: [x-api-key], store: ${store} }
routes:
  - { name: orders, match: { path_prefix: /v1/orders }, auth: [api-key] }
`;

let svc: TestService | undefined;
afterEach(async () => {
  await svc?.stop();
  svc = undefined;
});

async function gauge(s: TestService): Promise<number> {
  const text = await (await fetch(`${s.httpBase}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('portcullis_keystore_keys '));
  return Number(line?.split(' ')[1]);
}

describe('portcullis_keystore_keys', () => {
  it('file store: the record count, updated when the file changes and when a reload changes the store', async () => {
    const dir = tempDir();
    const store = FileKeyStore.init(join(dir, 'keys.yaml'));
    await createKey(store, 'pcl', { clientId: 'a' });
    await createKey(store, 'pcl', { clientId: 'b' });
    svc = await startService(config('{ type: file, path: keys.yaml }'), { dir });
    expect(await gauge(svc)).toBe(2);

    await createKey(FileKeyStore.init(join(dir, 'other.yaml')), 'pcl', { clientId: 'c' });
    await createKey(new FileKeyStore(join(dir, 'keys.yaml')), 'pcl', { clientId: 'd' });
    await waitFor(async () => (await gauge(svc!)) === 3, 5000);

    await svc.service.app.reload().then((ok) => expect(ok).toBe(true));
    expect(await gauge(svc)).toBe(3);
    const { writeFileSync } = await import('node:fs');
    writeFileSync(svc.configFile, config('{ type: file, path: other.yaml }'));
    expect(await svc.service.app.reload()).toBe(true);
    expect(await gauge(svc)).toBe(1);
  });

  it('memory store: reported too (0 until keys are put)', async () => {
    svc = await startService(config('{ type: memory }'));
    expect(await gauge(svc)).toBe(0);
    const store = svc.service.app.components.keyStore!;
    await createKey(store, 'pcl', { clientId: 'a' });
    expect(await gauge(svc)).toBe(1);
  });
});
