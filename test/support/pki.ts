// A small PKI made with openssl for the client-certificate tests: a root CA, an intermediate CA
// under it, and leaves for each case. `openssl ca` sets exact validity dates (an expired leaf, one
// not yet valid), which `openssl x509 -days` cannot. Test files using it carry the openssl tag.
import { execFileSync } from 'node:child_process';
import { X509Certificate } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from './service.ts';

export interface TestCert {
  /** PEM file path. */
  path: string;
  pem: string;
  der: Buffer;
  /** Private key PEM file path. */
  keyPath: string;
  x509: X509Certificate;
}

export interface TestPki {
  dir: string;
  root: TestCert;
  intermediate: TestCert;
  /** Another, unrelated root CA. */
  otherRoot: TestCert;
  /** A root CA that expired. */
  expiredRoot: TestCert;
  /** expiredRoot renewed: the same name and key, valid now. */
  renewedRoot: TestCert;
  /** spiffe://example.org/ns/prod/sa/api, issued by root. */
  spiffe: TestCert;
  /** spiffe://example.org/ns/prod/sa/worker, issued by the intermediate. */
  spiffeViaIntermediate: TestCert;
  /** spiffe://other.org/sa/x, issued by root. */
  otherTrustDomain: TestCert;
  /** A SPIFFE leaf whose validity ended in 2020. */
  expired: TestCert;
  /** A SPIFFE leaf valid from 2099. */
  notYetValid: TestCert;
  /** spiffe://example.org/sa/api issued by otherRoot. */
  foreign: TestCert;
  /** Issued by expiredRoot. */
  underExpiredRoot: TestCert;
  /** No URI SAN; subject CN=billing.internal, O=Acme\, Inc.; DNS SAN. */
  dn: TestCert;
  /** Two CNs in the subject. */
  twoCns: TestCert;
  /** Two URI SANs (not an X509-SVID). */
  twoUris: TestCert;
  /** A URI SAN that is not a valid SPIFFE ID (upper-case trust domain). */
  badSpiffe: TestCert;
  /** CA:FALSE and no key usage: a certificate that is not a CA, whatever it signs. */
  notCa: TestCert;
  /** A SPIFFE leaf signed by notCa. */
  signedByLeaf: TestCert;
  /** A self-signed CA with root's subject and subject key identifier, and another key. */
  impostorRoot: TestCert;
}

const EXTENSIONS = `
[ca_ext]
basicConstraints = critical, CA:TRUE
keyUsage = critical, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
[leaf_ext]
basicConstraints = CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = clientAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
`;

function caConfig(dir: string, name: string): string {
  const db = join(dir, `${name}.db`);
  writeFileSync(`${db}.index`, '');
  writeFileSync(`${db}.serial`, '1000\n');
  const file = join(dir, `${name}.cnf`);
  writeFileSync(
    file,
    `[ca]
default_ca = this
[this]
database = ${db}.index
serial = ${db}.serial
new_certs_dir = ${dir}
certificate = ${join(dir, `${name}.pem`)}
private_key = ${join(dir, `${name}.key`)}
default_md = sha256
policy = any
unique_subject = no
copy_extensions = none
[any]
commonName = optional
organizationName = optional
organizationalUnitName = optional
countryName = optional
${EXTENSIONS}`,
  );
  return file;
}

export function makeTestPki(): TestPki {
  const dir = tempDir('portcullis-pki-');
  const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe' });
  const ext = join(dir, 'ext.cnf');
  writeFileSync(ext, EXTENSIONS);
  const load = (name: string): TestCert => {
    const path = join(dir, `${name}.pem`);
    const pem = readFileSync(path, 'utf8');
    const x509 = new X509Certificate(pem);
    return { path, pem, der: x509.raw, keyPath: join(dir, `${name}.key`), x509 };
  };
  const key = (name: string) =>
    openssl('genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', `${name}.key`);

  /** A self-signed root with exact dates. */
  const root = (name: string, cn: string, start = '20200101000000Z', end = '20991231000000Z') => {
    key(name);
    openssl('req', '-new', '-key', `${name}.key`, '-subj', `/CN=${cn}`, '-out', `${name}.csr`);
    caConfig(dir, name);
    openssl(
      'ca',
      '-batch',
      '-config',
      `${name}.cnf`,
      '-selfsign',
      '-keyfile',
      `${name}.key`,
      '-in',
      `${name}.csr`,
      '-out',
      `${name}.pem`,
      '-notext',
      '-startdate',
      start,
      '-enddate',
      end,
      '-extfile',
      ext,
      '-extensions',
      'ca_ext',
    );
    return load(name);
  };
  /** A certificate issued by `issuer`, with its own extension section. */
  const issue = (
    name: string,
    issuer: string,
    subj: string,
    opts: { san?: string; ca?: boolean; plain?: boolean; start?: string; end?: string } = {},
  ) => {
    key(name);
    openssl('req', '-new', '-key', `${name}.key`, '-subj', subj, '-out', `${name}.csr`);
    const section = `${name}_ext`;
    writeFileSync(
      join(dir, `${name}.ext`),
      `${EXTENSIONS}\n[${section}]\n${opts.ca ? 'basicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign' : opts.plain ? 'basicConstraints = CA:FALSE' : 'basicConstraints = CA:FALSE\nkeyUsage = critical, digitalSignature\nextendedKeyUsage = clientAuth'}\nsubjectKeyIdentifier = hash\nauthorityKeyIdentifier = keyid\n${opts.san ? `subjectAltName = ${opts.san}\n` : ''}`,
    );
    openssl(
      'ca',
      '-batch',
      '-config',
      `${issuer}.cnf`,
      '-in',
      `${name}.csr`,
      '-out',
      `${name}.pem`,
      '-notext',
      '-preserveDN',
      '-startdate',
      opts.start ?? '20200101000000Z',
      '-enddate',
      opts.end ?? '20991231000000Z',
      '-extfile',
      `${name}.ext`,
      '-extensions',
      section,
    );
    if (opts.ca || opts.plain) caConfig(dir, name);
    return load(name);
  };

  const rootCa = root('root', 'Test Root CA');
  const otherRoot = root('other-root', 'Other Root CA');
  const expiredRoot = root('expired-root', 'Expired Root CA', '20200101000000Z', '20200201000000Z');
  const intermediate = issue('intermediate', 'root', '/CN=Test Intermediate CA', { ca: true });
  return {
    dir,
    root: rootCa,
    intermediate,
    otherRoot,
    expiredRoot,
    spiffe: issue('spiffe', 'root', '/CN=api', { san: 'URI:spiffe://example.org/ns/prod/sa/api, DNS:api.example.org' }),
    spiffeViaIntermediate: issue('spiffe-int', 'intermediate', '/CN=worker', {
      san: 'URI:spiffe://example.org/ns/prod/sa/worker',
    }),
    otherTrustDomain: issue('other-td', 'root', '/CN=x', { san: 'URI:spiffe://other.org/sa/x' }),
    expired: issue('expired', 'root', '/CN=old', {
      san: 'URI:spiffe://example.org/sa/old',
      start: '20200101000000Z',
      end: '20200102000000Z',
    }),
    notYetValid: issue('future', 'root', '/CN=future', {
      san: 'URI:spiffe://example.org/sa/future',
      start: '20990101000000Z',
      end: '20991231000000Z',
    }),
    foreign: issue('foreign', 'other-root', '/CN=api', { san: 'URI:spiffe://example.org/sa/api' }),
    underExpiredRoot: issue('under-expired', 'expired-root', '/CN=api', { san: 'URI:spiffe://example.org/sa/api' }),
    dn: issue('dn', 'root', '/O=Acme, Inc./OU=payments/CN=billing.internal', { san: 'DNS:billing.internal' }),
    twoCns: issue('two-cns', 'root', '/CN=one/CN=two'),
    twoUris: issue('two-uris', 'root', '/CN=two', { san: 'URI:spiffe://example.org/a, URI:spiffe://example.org/b' }),
    badSpiffe: issue('bad-spiffe', 'root', '/CN=bad', { san: 'URI:spiffe://Example.ORG/sa/api' }),
    notCa: issue('not-ca', 'root', '/CN=not a ca', { plain: true }),
    signedByLeaf: issue('by-leaf', 'not-ca', '/CN=sub', { san: 'URI:spiffe://example.org/sa/sub' }),
    impostorRoot: impostor(),
    renewedRoot: renewed(),
  };

  function renewed(): TestCert {
    writeFileSync(
      join(dir, 'renewed.ext'),
      '[x]\nbasicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign\nsubjectKeyIdentifier = hash\n',
    );
    openssl(
      'req',
      '-new',
      '-x509',
      '-key',
      'expired-root.key',
      '-subj',
      '/CN=Expired Root CA',
      '-days',
      '2',
      '-config',
      'renewed.ext',
      '-extensions',
      'x',
      '-out',
      'renewed.pem',
    );
    return { ...load('renewed'), keyPath: join(dir, 'expired-root.key') };
  }

  function impostor(): TestCert {
    const ski = execFileSync('openssl', ['x509', '-in', 'root.pem', '-noout', '-ext', 'subjectKeyIdentifier'], {
      cwd: dir,
      encoding: 'utf8',
    })
      .split('\n')[1]
      .trim();
    key('impostor');
    writeFileSync(
      join(dir, 'impostor.ext'),
      `[x]\nbasicConstraints = critical, CA:TRUE\nkeyUsage = critical, keyCertSign, cRLSign\nsubjectKeyIdentifier = ${ski}\n`,
    );
    openssl(
      'req',
      '-new',
      '-x509',
      '-key',
      'impostor.key',
      '-subj',
      '/CN=Test Root CA',
      '-days',
      '2',
      '-config',
      'impostor.ext',
      '-extensions',
      'x',
      '-out',
      'impostor.pem',
    );
    return load('impostor');
  }
}

/** Envoy's `source.certificate` / XFCC `Cert` encoding of a PEM: URL-encoded. */
export const urlEncodedPem = (pem: string): string => encodeURIComponent(pem);
