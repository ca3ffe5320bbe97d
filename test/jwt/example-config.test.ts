// The example config's DEMO-ONLY JWT issuer works as docs/jwt.md shows: a token minted with the
// demo key passes `portcullis check` with no identity provider and no network.
import { execFile } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { promisify } from 'node:util';
import { SignJWT, importPKCS8 } from 'jose';
import { expect, it } from 'vitest';

const run = promisify(execFile);

it('a token signed with the demo key is accepted by the example config through the CLI', async () => {
  const key = await importPKCS8(readFileSync('examples/demo-only-jwt-private-key.pem', 'utf8'), 'ES256');
  const token = await new SignJWT({ client_id: 'demo-client', scope: 'orders:read' })
    .setProtectedHeader({ alg: 'ES256', typ: 'at+jwt', kid: 'demo-es256-1' })
    .setIssuer('https://demo-issuer.invalid')
    .setAudience('https://api.example.com')
    .setSubject('demo-user')
    .setIssuedAt()
    .setJti(randomUUID())
    .setExpirationTime('10m')
    .sign(key);
  const { stdout } = await run(process.execPath, [
    '--import', 'tsx', 'src/cli/main.ts', 'check', '-c', 'examples/portcullis.yaml', '--path', '/v1/orders/7', '-H', `authorization: Bearer ${token}`,
  ]);
  const out = JSON.parse(stdout);
  expect(out).toMatchObject({ allowed: true, status: 200, route: 'orders-read' });
  expect(out.headers_set).toEqual({ 'x-user-id': 'demo-user', 'x-client-id': 'demo-client', 'x-scopes': 'orders:read', 'x-auth-method': 'jwt' });
  expect(stdout.includes(token)).toBe(false);
});
