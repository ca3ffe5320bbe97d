// The README's walkthrough on what a fresh clone has (the tracked files of examples/, copied): each
// command works as shown, the first one with no setup step, and afterwards every tracked file is as
// it was and everything the commands made is ignored by git. `keys create` used to edit the tracked
// examples/keys.yaml. The published demo key material is announced with a warning wherever it is used.
// @module-tag git
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { calculateJwkThumbprint, type JWK } from 'jose';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { hashApiKey } from '../../src/credentials/api-key/format.ts';
import { PUBLISHED_API_KEY_HASHES, PUBLISHED_JWK_THUMBPRINTS } from '../../src/runtime/published-keys.ts';
import { serve } from '../../src/cli/serve.ts';
import { runCli } from '../support/cli.ts';
import { tempDir } from '../support/service.ts';

const REPO = process.cwd();
const README = readFileSync(join(REPO, 'README.md'), 'utf8');
const DEMO_KEY = /`(pcl_[A-Za-z0-9]{38})`/.exec(README)?.[1] ?? '';

/** The tracked files under examples/, copied to a temp folder: what a clone has. */
function freshExamples(): { dir: string; tracked: string[] } {
  const tracked = execFileSync('git', ['ls-files', 'examples'], { cwd: REPO, encoding: 'utf8' }).trim().split('\n');
  const root = tempDir();
  for (const f of tracked) {
    mkdirSync(dirname(join(root, f)), { recursive: true });
    cpSync(join(REPO, f), join(root, f));
  }
  return { dir: join(root, 'examples'), tracked: tracked.map((f) => f.slice('examples/'.length)) };
}

describe('the README walkthrough on a fresh clone', () => {
  it('works command by command, and leaves the clone clean', async () => {
    expect(DEMO_KEY).not.toBe('');
    const { dir, tracked } = freshExamples();
    const cfg = join(dir, 'portcullis.yaml');

    // The one-minute try: the demo key is allowed, with no setup step before it.
    const ok = await runCli([
      'check',
      '-c',
      cfg,
      '--path',
      '/v1/orders/7',
      '-H',
      `x-api-key: ${DEMO_KEY}`,
      '-H',
      'X-User-Id: admin',
    ]);
    expect(ok.code).toBe(0);
    const okOut = JSON.parse(ok.stdout) as { allowed: boolean; headers_set: Record<string, string> };
    expect(okOut).toMatchObject({ allowed: true, headers_set: { 'x-client-id': 'demo-client' } });
    // The demo key names no subject: no x-user-id, and the client's "admin" does not pass.
    expect(okOut.headers_set['x-user-id']).toBeUndefined();
    expect((await runCli(['check', '-c', cfg, '--path', '/v1/orders/7'])).code).toBe(1);

    // The API-key walkthrough.
    const created = await runCli([
      'keys',
      'create',
      '-c',
      cfg,
      '--client-id',
      'partner-a',
      '--scopes',
      'orders:read',
      '--routes',
      'orders-read,reports',
      '--cidrs',
      '10.0.0.0/8',
      '--expires-in',
      '90d',
      '--json',
    ]);
    expect(created.code).toBe(0);
    const { id, key } = JSON.parse(created.stdout) as { id: string; key: string };
    const list = await runCli(['keys', 'list', '-c', cfg]);
    expect(list.code).toBe(0);
    expect(list.stdout).toContain(id);
    const allowed = await runCli([
      'check',
      '-c',
      cfg,
      '--path',
      '/v1/orders/7',
      '--source-ip',
      '10.1.2.3',
      '-H',
      `x-api-key: ${key}`,
    ]);
    expect(allowed.code).toBe(0);
    const rotated = await runCli(['keys', 'rotate', id, '-c', cfg, '--grace', '24h']);
    expect(rotated.code).toBe(0);
    expect((await runCli(['keys', 'revoke', id, '-c', cfg])).code).toBe(0);

    // Every tracked file is byte for byte what the repository has ...
    for (const f of tracked) expect(readFileSync(join(dir, f)), f).toEqual(readFileSync(join(REPO, 'examples', f)));
    // ... and whatever the commands made is ignored by git.
    const made = readdirSync(dir).filter((f) => !tracked.includes(f));
    expect(made).toContain('keys.yaml');
    for (const f of made) {
      const r = spawnSync('git', ['check-ignore', '-q', '--no-index', `examples/${f}`], { cwd: REPO });
      expect({ file: f, ignored: r.status === 0 }).toEqual({ file: f, ignored: true });
    }
  });
});

describe('published demo key material', () => {
  it('the list names exactly the keys this repository publishes', async () => {
    expect(PUBLISHED_API_KEY_HASHES.has(hashApiKey(DEMO_KEY))).toBe(true);
    const deployment = readFileSync(join(REPO, 'docs/deployment.md'), 'utf8');
    const composeKey = /x-api-key: (pcl_[A-Za-z0-9]{38})/.exec(deployment)![1];
    expect(PUBLISHED_API_KEY_HASHES.has(hashApiKey(composeKey))).toBe(true);
    const jwks = JSON.parse(readFileSync(join(REPO, 'examples/demo-only-jwks.json'), 'utf8')) as { keys: JWK[] };
    for (const k of jwks.keys)
      expect(PUBLISHED_JWK_THUMBPRINTS.has(await calculateJwkThumbprint(k, 'sha256'))).toBe(true);
  });

  it('serve warns at start for each one in use, whatever the config calls it; a config without them gets no warning', async () => {
    const { dir } = freshExamples();
    // The demo issuer renamed, its JWKS copied under another name: still the published key.
    writeFileSync(
      join(dir, 'portcullis.yaml'),
      readFileSync(join(dir, 'portcullis.yaml'), 'utf8')
        .replace('https://demo-issuer.invalid', 'https://idp.example.com')
        .replace('jwks_file: demo-only-jwks.json', 'jwks_file: prod-jwks.json'),
    );
    cpSync(join(dir, 'demo-only-jwks.json'), join(dir, 'prod-jwks.json'));
    const lines: string[] = [];
    const svc = await serve({
      configFile: join(dir, 'portcullis.yaml'),
      log: pino({ level: 'info' }, { write: (l: string) => void lines.push(l) }),
      grpcAddress: '127.0.0.1:0',
      httpAddress: '127.0.0.1:0',
      watchIntervalMs: 0,
    });
    await svc.stop();
    const warnings = lines
      .map((l) => JSON.parse(l) as { level: number; msg: string; config_path?: string })
      .filter((l) => l.msg.startsWith('DEMO-ONLY key in use'));
    expect(warnings.map((w) => [w.level, w.config_path])).toEqual(
      expect.arrayContaining([
        [40, 'credentials.jwt[0] (issuer https://idp.example.com)'],
        [40, 'credentials.api_key.store'],
      ]),
    );

    const clean = join(tempDir(), 'portcullis.yaml');
    writeFileSync(join(dirname(clean), 'keys.yaml'), 'keys: []\n');
    writeFileSync(
      clean,
      'server: { grpc: { address: "127.0.0.1:0" }, http: { address: "127.0.0.1:0" } }\ncredentials: { api_key: { store: { type: file, path: keys.yaml } } }\n',
    );
    const quiet: string[] = [];
    const svc2 = await serve({
      configFile: clean,
      log: pino({ level: 'info' }, { write: (l: string) => void quiet.push(l) }),
      watchIntervalMs: 0,
    });
    await svc2.stop();
    expect(quiet.join('')).not.toContain('DEMO-ONLY');
  });
});
