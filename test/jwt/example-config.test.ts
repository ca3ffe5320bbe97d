// The example config's DEMO-ONLY JWT issuer works as docs/jwt.md shows: a token minted with the
// demo key passes `portcullis check` with no identity provider and no network.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SignJWT, importPKCS8 } from 'jose';
import { expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';

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
  const { code, stdout, stderr } = await runCli([
    'check',
    '-c',
    'examples/portcullis.yaml',
    '--path',
    '/v1/orders/7',
    '-H',
    `authorization: Bearer ${token}`,
  ]);
  expect(code, stderr).toBe(0);
  const out = JSON.parse(stdout);
  expect(out).toMatchObject({ allowed: true, status: 200, route: 'orders-read' });
  expect(out.headers_set).toEqual({
    'x-user-id': 'demo-user',
    'x-client-id': 'demo-client',
    'x-scopes': 'orders:read',
    'x-auth-method': 'jwt',
  });
  expect(stdout.includes(token)).toBe(false);
});
