// A key store file that is missing, unreadable or malformed is a config error naming the file:
// in `config check`, at start (exit 2, nothing listening) and on reload (rejected, the running
// config keeps serving). It used to be an empty store: serve started, /readyz said ready, every key
// got 401. An empty store is made on purpose, with `portcullis keys init`.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { afterAll, describe, expect, it } from 'vitest';
import { createKey } from '../../src/credentials/api-key/admin.ts';
import { ConfigError } from '../../src/policy/load.ts';
import { serve } from '../../src/cli/serve.ts';
import { FileKeyStore } from '../../src/stores/file-keystore.ts';
import { runCli } from '../support/cli.ts';
import { startService, tempDir, type TestService } from '../support/service.ts';

const config = (keysPath: string) => `
server:
  grpc: { address: "127.0.0.1:0" }
  http: { address: "127.0.0.1:0" }
credentials:
  api_key: { headers: [x-api-key], store: { type: file, path: ${keysPath} } }
routes:
  - { name: orders, match: { path_prefix: /v1/orders }, auth: [api-key] }
`;

function writeConfig(dir: string, keysPath: string): string {
  const file = join(dir, 'portcullis.yaml');
  writeFileSync(file, config(keysPath));
  return file;
}

/** Each way a key file can be wrong, and the words that must name it. */
const BROKEN: Array<{ name: string; make(dir: string): void; says: RegExp }> = [
  {
    name: 'missing',
    make: () => {},
    says: /keys\.yaml does not exist\. Create an empty key store with `portcullis keys init -c .*portcullis\.yaml`/,
  },
  {
    name: 'unreadable (a directory)',
    make: (d) => mkdirSync(join(d, 'keys.yaml')),
    says: /cannot read .*keys\.yaml: EISDIR/,
  },
  {
    name: 'not YAML',
    make: (d) => writeFileSync(join(d, 'keys.yaml'), 'keys: [\n'),
    says: /keys\.yaml is not valid YAML/,
  },
  {
    name: 'keys misspelt',
    make: (d) => writeFileSync(join(d, 'keys.yaml'), 'kyes: []\n'),
    says: /keys\.yaml: expected a mapping with a "keys" list/,
  },
  {
    name: 'keys not a list',
    make: (d) => writeFileSync(join(d, 'keys.yaml'), 'keys: { a: 1 }\n'),
    says: /keys\.yaml: "keys" must be a list/,
  },
];

describe('config check validates the key store file as serve would', () => {
  for (const b of BROKEN) {
    it(`${b.name}: exit 2, naming the file and the config path`, async () => {
      const dir = tempDir();
      b.make(dir);
      const r = await runCli(['config', 'check', writeConfig(dir, 'keys.yaml')]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(/credentials\.api_key\.store\.path: /);
      expect(r.stderr).toMatch(b.says);
      expect(r.stdout).not.toContain('valid');
    });
  }

  it('--no-files checks the config alone and says so', async () => {
    const r = await runCli(['config', 'check', '--no-files', writeConfig(tempDir(), 'nokeys.yaml')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain('the files it names were not checked');
  });
});

describe('serve refuses it at start', () => {
  it('exits 2 with every problem listed; nothing starts', async () => {
    const dir = tempDir();
    const r = await runCli(['serve', '-c', writeConfig(dir, 'nokeys.yaml')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/credentials\.api_key\.store\.path: .*nokeys\.yaml does not exist/);
    expect(r.stdout).not.toContain('portcullis started');
  });

  it('in process: serve() rejects with a ConfigError; no "keeping the previous keys" (there are none)', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'keys.yaml'), 'keys: [\n');
    const lines: string[] = [];
    const log = pino({ level: 'debug' }, { write: (l: string) => void lines.push(l) });
    const err = await serve({ configFile: writeConfig(dir, 'keys.yaml'), log, watchIntervalMs: 0 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems.join('\n')).toMatch(/keys\.yaml is not valid YAML/);
    expect(lines.join('')).not.toContain('keeping the previous keys');
  });

  it('the store itself: a first load that fails throws and logs nothing about keeping keys it never had', async () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'keys.yaml'), 'kyes: []\n');
    const lines: string[] = [];
    const store = new FileKeyStore(
      join(dir, 'keys.yaml'),
      pino({ level: 'debug' }, { write: (l: string) => void lines.push(l) }),
    );
    await expect(store.start()).rejects.toThrow(/expected a mapping with a "keys" list/);
    await store.close();
    expect(lines.join('')).not.toContain('keeping the previous keys');
  });
});

describe('a reload to a config whose key file is missing is rejected', () => {
  let svc: TestService;
  afterAll(async () => svc?.stop());

  it('the previous config and its keys keep serving; the failure is counted and names the file', async () => {
    const dir = tempDir();
    const store = FileKeyStore.init(join(dir, 'keys.yaml'));
    const { key } = await createKey(store, 'pcl', { clientId: 'partner-a' });
    svc = await startService(config('keys.yaml'), { dir });
    expect((await svc.envoy({ path: '/v1/orders', headers: { 'x-api-key': key } })).allowed).toBe(true);

    writeFileSync(svc.configFile, config('keys-typo.yaml'));
    expect(await svc.service.app.reload()).toBe(false); // SIGHUP (the file watcher may try it too)
    const rejected = JSON.parse(svc.logs.find((l) => l.includes('config reload rejected'))!) as { problems: string[] };
    expect(rejected.problems.join('\n')).toMatch(/credentials\.api_key\.store\.path: .*keys-typo\.yaml does not exist/);
    expect((await svc.envoy({ path: '/v1/orders', headers: { 'x-api-key': key } })).allowed).toBe(true);
    const metrics = await (await fetch(`${svc.httpBase}/metrics`)).text();
    expect(metrics).toMatch(/portcullis_config_reloads_total\{result="failure"\} 1\n/);
    expect((await fetch(`${svc.httpBase}/readyz`)).status).toBe(200);
  });
});

describe('portcullis keys init', () => {
  it('creates an empty store once; then config check, keys create and serve accept it', async () => {
    const dir = tempDir();
    const file = writeConfig(dir, 'keys.yaml');
    const before = await runCli(['keys', 'create', '-c', file, '--client-id', 'partner-a']);
    expect(before.code).toBe(2);
    expect(before.stderr).toContain('keys init');

    const init = await runCli(['keys', 'init', '-c', file]);
    expect(init.code).toBe(0);
    expect(init.stdout).toContain(join(dir, 'keys.yaml'));
    expect(FileKeyStore.read(join(dir, 'keys.yaml'))).toEqual([]);
    const again = await runCli(['keys', 'init', '-c', file]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain('already exists');

    expect((await runCli(['config', 'check', file])).code).toBe(0);
    const created = await runCli(['keys', 'create', '-c', file, '--client-id', 'partner-a', '--json']);
    expect(created.code).toBe(0);
    expect(readFileSync(join(dir, 'keys.yaml'), 'utf8')).toContain((JSON.parse(created.stdout) as { id: string }).id);
  });
});
