// TLS and mTLS on the gRPC listener of a real `portcullis serve` process, with certificates made by
// openssl: who may connect, and certificate rotation without a restart (a broken rotation keeps the
// previous certificate serving).
// @module-tag openssl
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'node:tls';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { tempDir } from '../support/service.ts';
import { clients } from './support/grpc-clients.ts';
import { killAll, startPortcullis, type PortcullisProcess } from './support/portcullis-process.ts';

const dir = tempDir('portcullis-tls-');
const running: PortcullisProcess[] = [];
const f = (name: string) => join(dir, name);
const read = (name: string) => readFileSync(f(name));

function openssl(...args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
}
/** A P-256 key and a certificate signed by `ca` (self-signed when ca is undefined). */
function makeCert(name: string, cn: string, ca?: string, san?: string): void {
  openssl(
    'req',
    '-new',
    '-x509',
    '-newkey',
    'ec',
    '-pkeyopt',
    'ec_paramgen_curve:P-256',
    '-nodes',
    '-keyout',
    `${name}.key`,
    '-out',
    `${name}.crt`,
    '-subj',
    `/CN=${cn}`,
    '-days',
    '2',
    ...(san ? ['-addext', `subjectAltName=${san}`] : []),
    ...(ca ? ['-CA', `${ca}.crt`, '-CAkey', `${ca}.key`] : []),
  );
}

const SAN = 'DNS:localhost,IP:127.0.0.1';
const config = (tls: string) => `
server:
  grpc:
    address: "127.0.0.1:0"
    tls: { ${tls} }
  http: { address: "127.0.0.1:0" }
routes:
  - { name: public, match: { path_prefix: /public }, public: true }
`;

/** The CN of the certificate a fresh TLS connection is served. */
function servedCn(port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(
      {
        host: '127.0.0.1',
        port,
        ca: read('ca.crt'),
        cert: read('client.crt'),
        key: read('client.key'),
        ALPNProtocols: ['h2'],
        servername: 'localhost',
      },
      () => {
        const cn = s.getPeerCertificate().subject.CN;
        s.end();
        resolve(String(cn));
      },
    );
    s.on('error', reject);
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const mtlsCreds = (client = 'client') =>
  grpc.credentials.createSsl(read('ca.crt'), read(`${client}.key`), read(`${client}.crt`));

beforeAll(() => {
  makeCert('ca', 'portcullis-test-ca');
  makeCert('other-ca', 'someone-else-ca');
  makeCert('server', 'portcullis-1', 'ca', SAN);
  makeCert('server2', 'portcullis-2', 'ca', SAN);
  makeCert('client', 'envoy', 'ca');
  makeCert('stranger', 'envoy', 'other-ca');
});
afterAll(() => killAll(running));

describe('mTLS (client_ca_file set)', () => {
  let p: PortcullisProcess;
  let addr: string;
  beforeAll(async () => {
    writeFileSync(f('tls.crt'), read('server.crt'));
    writeFileSync(f('tls.key'), read('server.key'));
    const file = f('mtls.yaml');
    // Relative paths resolve against the config file's folder.
    writeFileSync(file, config('cert_file: tls.crt, key_file: tls.key, client_ca_file: ca.crt'));
    p = await startPortcullis(file);
    running.push(p);
    addr = `localhost:${p.grpcPort}`;
  });

  it('serves Check and health to a client with a certificate from the client CA', async () => {
    const c = clients(addr, mtlsCreds());
    expect((await c.check('/public/x')).status?.code ?? 0).toBe(0);
    expect(await c.healthCheck()).toBe('SERVING');
    c.close();
  });

  it('refuses a client without a certificate, one from another CA, and plaintext', async () => {
    const noCert = clients(addr, grpc.credentials.createSsl(read('ca.crt')));
    const stranger = clients(addr, mtlsCreds('stranger'));
    const plain = clients(addr, grpc.credentials.createInsecure());
    for (const c of [noCert, stranger, plain]) {
      await expect(c.check('/public/x', {}, 2000)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
      c.close();
    }
  });

  it('picks up a rotated certificate without a restart; open connections keep working', async () => {
    const kept = clients(addr, mtlsCreds());
    expect((await kept.check('/public/x')).status?.code ?? 0).toBe(0);
    expect(await servedCn(p.grpcPort)).toBe('portcullis-1');
    // The way a Secret update lands: the files change in place.
    writeFileSync(f('tls.crt'), read('server2.crt'));
    writeFileSync(f('tls.key'), read('server2.key'));
    await p.waitForLog(/^TLS certificate reloaded/, 8000);
    expect(await servedCn(p.grpcPort)).toBe('portcullis-2');
    const fresh = clients(addr, mtlsCreds());
    expect((await fresh.check('/public/x')).status?.code ?? 0).toBe(0);
    expect((await kept.check('/public/x')).status?.code ?? 0).toBe(0);
    // The new context still requires a client certificate.
    const noCert = clients(addr, grpc.credentials.createSsl(read('ca.crt')));
    await expect(noCert.check('/public/x', {}, 2000)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    noCert.close();
    expect(p.proc.exitCode).toBeNull();
    fresh.close();
    kept.close();
  });

  it('rejects a broken rotation (key does not match) and keeps serving the previous certificate', async () => {
    writeFileSync(f('tls.key'), read('server.key')); // portcullis-1's key beside portcullis-2's cert
    const line = await p.waitForLog(/^TLS certificate reload rejected/, 8000);
    expect(String(line.error)).toMatch(/mismatch/i);
    expect(JSON.stringify(line)).not.toContain('PRIVATE KEY'); // never log key material
    await sleep(300);
    expect(await servedCn(p.grpcPort)).toBe('portcullis-2');
    const c = clients(addr, mtlsCreds());
    expect((await c.check('/public/x')).status?.code ?? 0).toBe(0);
    c.close();
    const metrics = await (await fetch(`http://127.0.0.1:${p.httpPort}/metrics`)).text();
    expect(metrics).toMatch(/^portcullis_tls_reloads_total\{result="failure"\} [1-9]/m);
    expect(metrics).toMatch(/^portcullis_tls_certificate_not_after_seconds \d/m);
  });
});

describe('TLS without client certificates', () => {
  it('accepts any TLS client and still refuses plaintext', async () => {
    const file = f('tls.yaml');
    writeFileSync(file, config(`cert_file: ${f('server.crt')}, key_file: ${f('server.key')}`));
    const p = await startPortcullis(file);
    running.push(p);
    const tls = clients(`localhost:${p.grpcPort}`, grpc.credentials.createSsl(read('ca.crt')));
    expect((await tls.check('/public/x')).status?.code ?? 0).toBe(0);
    const plain = clients(`127.0.0.1:${p.grpcPort}`);
    await expect(plain.check('/public/x', {}, 2000)).rejects.toMatchObject({ code: grpc.status.UNAVAILABLE });
    tls.close();
    plain.close();
  });

  it('refuses to start with a key that does not match the certificate, naming the config path', async () => {
    const file = f('bad.yaml');
    writeFileSync(file, config(`cert_file: ${f('server.crt')}, key_file: ${f('server2.key')}`));
    await expect(startPortcullis(file)).rejects.toThrow(/server\.grpc\.tls/);
  });
});
