// One config change is one reload attempt in portcullis_config_reloads_total and in the log, however
// many triggers it gets: the file watcher and a SIGHUP (serve calls app.reload() for both) used to
// count a broken edit twice. The same text with a different outcome (a referenced file fixed) counts.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { startService, waitFor, type TestService } from '../support/service.ts';

const good = (extra = '') => `
credentials:
  api_key: { headers: [x-api-key], store: { type: file, path: keys.yaml } }
routes:
  - { name: orders, match: { path_prefix: /v1/orders }, auth: [api-key] }
${extra}`;

let svc: TestService | undefined;
afterEach(async () => {
  await svc?.stop();
  svc = undefined;
});

async function reloads(
  s: TestService,
): Promise<{ success: number; failure: number; rejectedLogs: number; reloadedLogs: number }> {
  const text = await (await fetch(`${s.httpBase}/metrics`)).text();
  const count = (result: string) =>
    Number(
      / (\d+)$/.exec(
        text.split('\n').find((l) => l.startsWith(`portcullis_config_reloads_total{result="${result}"}`)) ?? ' 0',
      )?.[1] ?? 0,
    );
  return {
    success: count('success'),
    failure: count('failure'),
    rejectedLogs: s.logs.filter((l) => l.includes('"config reload rejected;')).length,
    reloadedLogs: s.logs.filter((l) => l.includes('"msg":"config reloaded"')).length,
  };
}

describe('config reload counting', () => {
  it('a broken edit found by the watcher and then sent a SIGHUP counts one failure', async () => {
    svc = await startService(good(), { files: { 'keys.yaml': 'keys: []\n' } });
    await new Promise((r) => setTimeout(r, 500)); // the watcher (200 ms polls) has seen the first version
    writeFileSync(svc.configFile, good('  - { name: bad, match: { path: /x }, scope: [typo] }\n'));
    await waitFor(async () => (await reloads(svc!)).failure === 1, 5000); // the watcher's attempt
    expect(await svc.service.app.reload()).toBe(false); // the SIGHUP
    expect(await svc.service.app.reload()).toBe(false); // and another
    expect(await reloads(svc)).toEqual({ success: 0, failure: 1, rejectedLogs: 1, reloadedLogs: 0 });
  });

  it("two triggers at once for one good edit, and the watcher's own: one success", async () => {
    svc = await startService(good(), { files: { 'keys.yaml': 'keys: []\n' } });
    writeFileSync(svc.configFile, good('  - { name: status, match: { path: /status }, public: true }\n'));
    await Promise.all([svc.service.app.reload(), svc.service.app.reload()]);
    await new Promise((r) => setTimeout(r, 600)); // the watcher's own trigger (200 ms polls)
    expect(await reloads(svc)).toMatchObject({ success: 1, failure: 0, reloadedLogs: 1 });
    expect((await svc.envoy({ path: '/status' })).allowed).toBe(true);
  });

  it('the same text failing for a different reason counts again (a referenced file changed)', async () => {
    svc = await startService(good(), { files: { 'keys.yaml': 'keys: []\n' } });
    writeFileSync(svc.configFile, good().replace('path: keys.yaml', 'path: other.yaml'));
    expect(await svc.service.app.reload()).toBe(false);
    expect(await reloads(svc)).toMatchObject({ failure: 1, rejectedLogs: 1 });
    writeFileSync(join(svc.dir, 'other.yaml'), 'kyes: []\n'); // exists now, but malformed
    expect(await svc.service.app.reload()).toBe(false);
    expect(await reloads(svc)).toMatchObject({ failure: 2, rejectedLogs: 2 });
    writeFileSync(join(svc.dir, 'other.yaml'), 'keys: []\n');
    expect(await svc.service.app.reload()).toBe(true);
    expect(await reloads(svc)).toMatchObject({ success: 1, failure: 2 });
  });
});
