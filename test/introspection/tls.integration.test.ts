// The introspection call verifies TLS: the real oidc-provider behind a TLS terminator with an
// openssl-made certificate is trusted only through `ca_file`; an untrusted certificate means 503
// (never an allow, never a silent downgrade), and a plain http:// endpoint needs allow_http.
// @module-tag openssl
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import { request } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../src/policy/load.ts';
import { startService, tempDir } from '../support/service.ts';
import { INTROSPECTION_CLIENT, startIdp, type TestIdp } from '../support/idp.ts';

let idp: TestIdp;
let tls: Server;
let dir: string;
let httpsEndpoint: string;

function openssl(args: string[]): void {
  execFileSync('openssl', args, { stdio: 'pipe' });
}

beforeAll(async () => {
  idp = await startIdp();
  dir = tempDir();
  // A private CA and a server certificate for 127.0.0.1 it signed.
  openssl([
    'req',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-subj',
    '/CN=test-ca',
    '-days',
    '1',
    '-keyout',
    join(dir, 'ca.key'),
    '-out',
    join(dir, 'ca.pem'),
  ]);
  openssl([
    'req',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-subj',
    '/CN=127.0.0.1',
    '-keyout',
    join(dir, 'server.key'),
    '-out',
    join(dir, 'server.csr'),
  ]);
  writeFileSync(join(dir, 'san.ext'), 'subjectAltName=IP:127.0.0.1\n');
  openssl([
    'x509',
    '-req',
    '-in',
    join(dir, 'server.csr'),
    '-CA',
    join(dir, 'ca.pem'),
    '-CAkey',
    join(dir, 'ca.key'),
    '-CAcreateserial',
    '-days',
    '1',
    '-extfile',
    join(dir, 'san.ext'),
    '-out',
    join(dir, 'server.pem'),
  ]);
  // TLS in front of the real provider: bytes in, bytes out.
  tls = createServer(
    { key: readFileSync(join(dir, 'server.key')), cert: readFileSync(join(dir, 'server.pem')) },
    (req, res) => {
      const up = request(
        {
          host: '127.0.0.1',
          port: idp.port,
          path: req.url,
          method: req.method,
          headers: { ...req.headers, host: `127.0.0.1:${idp.port}` },
        },
        (r) => {
          res.writeHead(r.statusCode ?? 502, r.headers);
          r.pipe(res);
        },
      );
      up.on('error', () => res.destroy());
      req.pipe(up);
    },
  );
  await new Promise<void>((r) => tls.listen(0, '127.0.0.1', r));
  httpsEndpoint = `https://127.0.0.1:${(tls.address() as AddressInfo).port}/token/introspection`;
});
afterAll(async () => {
  await new Promise<void>((r) => {
    tls?.close(() => r());
    tls?.closeAllConnections();
  });
  await idp?.close();
});

const config = (extra: string) => `
credentials:
  introspection:
    endpoint: ${httpsEndpoint}
    client_id: ${INTROSPECTION_CLIENT.client_id}
    client_secret: ${INTROSPECTION_CLIENT.client_secret}
    audiences: [https://api.example.com]
    issuer: ${idp.issuer}
    timeout_ms: 2000
${extra}
routes:
  - { name: orders, match: { path_prefix: /v1/orders }, auth: [oauth2] }
`;

describe('introspection over TLS', () => {
  it('trusted through ca_file: the token passes', async () => {
    const s = await startService(config(`    ca_file: ${join(dir, 'ca.pem')}`));
    try {
      const token = await idp.opaqueAccessToken();
      const out = await s.envoy({ method: 'GET', path: '/v1/orders', headers: { authorization: `Bearer ${token}` } });
      expect(out.status).toBe(200);
      expect(out.upstreamHeaders['x-client-id']).toBe('test-client');
    } finally {
      await s.stop();
    }
  });

  it('a certificate from an unknown CA: 503, never an allow', async () => {
    const s = await startService(config(''));
    try {
      const token = await idp.opaqueAccessToken();
      const out = await s.envoy({ method: 'GET', path: '/v1/orders', headers: { authorization: `Bearer ${token}` } });
      expect(out.status).toBe(503);
      expect(s.logs.join('')).toMatch(/UNABLE_TO_VERIFY_LEAF_SIGNATURE|SELF_SIGNED|unable to verify/i);
    } finally {
      await s.stop();
    }
  });

  it('a plain http:// endpoint is refused unless allow_http: true', () => {
    const yaml = (extra: string) =>
      `credentials: { introspection: { endpoint: "http://idp.internal/introspect", client_id: gw, client_secret: s, audiences: [api]${extra} } }`;
    expect(() => parseConfig(yaml(''))).toThrow(/credentials\.introspection\.endpoint: use https:/);
    expect(parseConfig(yaml(', allow_http: true')).credentials.introspection?.allow_http).toBe(true);
  });
});
