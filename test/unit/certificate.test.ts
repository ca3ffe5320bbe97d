// Client certificates for certificate-bound tokens (RFC 8705) and the mtls credential: read from
// Envoy's source.certificate, from XFCC and from RFC 9440 Client-Cert; the x5t#S256 thumbprint;
// the SPIFFE ID and DN identity; validity; and re-verification against a pinned CA bundle. The
// certificates are made with openssl (test/support/pki.ts): a root, an intermediate, a SPIFFE
// leaf, an expired one, one not yet valid, one from another CA, one of another trust domain, and
// non-SPIFFE DN leaves.
// @module-tag openssl
import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  certificateFromClientCertHeader,
  certificateFromEnvoy,
  certificateFromXfcc,
  certificateIdentity,
  checkCertificateBinding,
  parseSpiffeId,
  parseSubjectAltName,
  parseXfcc,
  presentedCertificate,
  TrustBundle,
  type MtlsIdentityPolicy,
  type PresentedCertificate,
} from '../../src/credentials/pop/certificate.ts';
import { makeTestPki, urlEncodedPem, type TestCert, type TestPki } from '../support/pki.ts';

let pki: TestPki;
beforeAll(() => {
  pki = makeTestPki();
});

const x5t = (c: TestCert) => createHash('sha256').update(c.der).digest('base64url');
const hashHex = (c: TestCert) => createHash('sha256').update(c.der).digest('hex');
/** Envoy's XFCC element for a client certificate, as its HCM writes it (Cert quoted, URL-encoded). */
const xfccElement = (c: TestCert, by = 'spiffe://example.org/ns/edge/sa/envoy') =>
  `By=${by};Hash=${hashHex(c)};Cert="${urlEncodedPem(c.pem)}";Subject="${c.x509.subject.replace(/\n/g, ',')}";URI=${(c.x509.subjectAltName ?? '').match(/URI:([^,]+)/)?.[1] ?? ''}`;

function presented(c: TestCert): PresentedCertificate {
  const r = certificateFromEnvoy(urlEncodedPem(c.pem));
  if (!r.ok) throw new Error(r.reason);
  return r.certificate;
}
const reason = (r: { ok: boolean; reason?: string } | undefined) => (r && !r.ok ? r.reason : 'ok');

const SPIFFE: MtlsIdentityPolicy = {
  identity: { from: 'spiffe', trustDomains: ['example.org'] },
  clockSkewSeconds: 30,
};

describe('sources', () => {
  it('Envoy source.certificate (URL-encoded PEM): the certificate and its x5t#S256 (base64url SHA-256 of the DER)', () => {
    const r = certificateFromEnvoy(urlEncodedPem(pki.spiffe.pem));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.certificate.from).toBe('envoy');
    expect(r.certificate.x5tS256).toBe(x5t(pki.spiffe));
    // The same as Node's fingerprint256 (hex with colons) in base64url.
    expect(r.certificate.x5tS256).toBe(
      Buffer.from(pki.spiffe.x509.fingerprint256.replace(/:/g, ''), 'hex').toString('base64url'),
    );
  });

  it('source.certificate absent, empty, not PEM, two certificates, or oversized: missing / malformed', () => {
    expect(reason(certificateFromEnvoy(undefined))).toBe('mtls_certificate_missing');
    expect(reason(certificateFromEnvoy(''))).toBe('mtls_certificate_missing');
    for (const bad of [
      'garbage',
      '%E0%A4%A',
      urlEncodedPem(pki.spiffe.pem + pki.root.pem),
      urlEncodedPem(pki.spiffe.pem.replace(/[A-Z]{8}/, 'AAAAAAAA')),
      urlEncodedPem(`junk\n${pki.spiffe.pem}`),
      'A'.repeat(40_000),
    ]) {
      expect(reason(certificateFromEnvoy(bad))).toBe('mtls_certificate_malformed');
    }
  });

  it('RFC 9440 Client-Cert (:base64 DER:): read; two values, bad syntax, trailing bytes: refused', () => {
    const value = `:${pki.spiffe.der.toString('base64')}:`;
    const r = certificateFromClientCertHeader(value);
    expect(r.ok && r.certificate.x5tS256).toBe(x5t(pki.spiffe));
    expect(reason(certificateFromClientCertHeader(undefined))).toBe('mtls_certificate_missing');
    expect(reason(certificateFromClientCertHeader(`${value},${value}`))).toBe('mtls_certificate_multiple');
    for (const bad of [
      pki.spiffe.der.toString('base64'),
      `:${pki.spiffe.der.toString('base64url')}:`,
      `:${Buffer.concat([pki.spiffe.der, Buffer.from([0, 0])]).toString('base64')}:`,
      '::',
      ':AAAA:',
    ]) {
      expect(reason(certificateFromClientCertHeader(bad)), bad.slice(0, 20)).toBe('mtls_certificate_malformed');
    }
  });

  it('XFCC: Envoy\'s format is parsed (quoted values with , ; = and \\", repeated keys, case-insensitive keys)', () => {
    const els = parseXfcc(
      'By=spiffe://a/x;By=spiffe://a/y;hash=ab;Subject="/C=US/O=A\\"B, Inc.;x=y";URI=,BY=http://front;Hash=cd',
    );
    expect(els).toHaveLength(2);
    expect(els![0].get('by')).toEqual(['spiffe://a/x', 'spiffe://a/y']);
    expect(els![0].get('subject')).toEqual(['/C=US/O=A"B, Inc.;x=y']);
    expect(els![0].get('uri')).toEqual(['']);
    expect(els![1].get('by')).toEqual(['http://front']);
    for (const bad of [
      '',
      'Hash',
      'Hash=a;',
      'Hash=a,',
      'Cert="unterminated',
      'Cert="a"b',
      'Ha sh=a',
      'Hash=a"b',
      `${'Hash=a,'.repeat(16)}Hash=a`,
    ])
      expect(parseXfcc(bad), bad).toBeUndefined();
  });

  it('XFCC: the last element by default (written by the proxy that called us); trusted_hops picks one further left', () => {
    const header = `${xfccElement(pki.spiffe)},${xfccElement(pki.otherTrustDomain)}`;
    const last = certificateFromXfcc(header);
    expect(last.ok && last.certificate.x5tS256).toBe(x5t(pki.otherTrustDomain));
    const hop = certificateFromXfcc(header, { trustedHops: 1 });
    expect(hop.ok && hop.certificate.x5tS256).toBe(x5t(pki.spiffe));
    expect(reason(certificateFromXfcc(header, { trustedHops: 2 }))).toBe('mtls_certificate_missing');
  });

  it("XFCC: a client-forged element in front of the proxy's own is not the one read", () => {
    // The attacker sends an XFCC naming a certificate it does not hold; the proxy (APPEND_FORWARD)
    // appends the real one.
    const forged = `Hash=${hashHex(pki.spiffe)};URI=spiffe://example.org/ns/prod/sa/api`;
    const r = certificateFromXfcc(`${forged},${xfccElement(pki.otherTrustDomain)}`);
    expect(r.ok && r.certificate.x5tS256).toBe(x5t(pki.otherTrustDomain));
  });

  it('XFCC: `by` restricts whose element is accepted', () => {
    const header = xfccElement(pki.spiffe, 'spiffe://example.org/ns/edge/sa/envoy');
    expect(certificateFromXfcc(header, { by: ['spiffe://example.org/ns/edge/sa/envoy'] }).ok).toBe(true);
    expect(reason(certificateFromXfcc(header, { by: ['spiffe://example.org/ns/other/sa/envoy'] }))).toBe(
      'mtls_certificate_source_untrusted',
    );
    expect(reason(certificateFromXfcc(`Hash=${hashHex(pki.spiffe)}`, { by: ['spiffe://x/y'] }))).toBe(
      'mtls_certificate_source_untrusted',
    );
  });

  it("XFCC: Hash alone gives the thumbprint (enough for a bound token) but no certificate; a Hash that is not its Cert's is refused", () => {
    const r = certificateFromXfcc(`By=spiffe://e/x;Hash=${hashHex(pki.spiffe)}`);
    expect(r.ok && r.certificate).toEqual({ from: 'xfcc', x5tS256: x5t(pki.spiffe) });
    const mismatched = `Hash=${hashHex(pki.root)};Cert="${urlEncodedPem(pki.spiffe.pem)}"`;
    expect(reason(certificateFromXfcc(mismatched))).toBe('mtls_certificate_malformed');
    expect(reason(certificateFromXfcc('By=spiffe://e/x;URI=spiffe://example.org/sa/api'))).toBe(
      'mtls_certificate_missing',
    );
    expect(reason(certificateFromXfcc(`Hash=${hashHex(pki.spiffe)};Hash=${hashHex(pki.root)}`))).toBe(
      'mtls_certificate_malformed',
    );
    expect(reason(certificateFromXfcc('Hash=zz'))).toBe('mtls_certificate_malformed');
  });

  it('XFCC Chain: the intermediates it carries help the chain check (the leaf in it is skipped)', () => {
    const chain = urlEncodedPem(pki.spiffeViaIntermediate.pem + pki.intermediate.pem);
    const r = certificateFromXfcc(
      `Hash=${hashHex(pki.spiffeViaIntermediate)};Cert="${urlEncodedPem(pki.spiffeViaIntermediate.pem)}";Chain="${chain}"`,
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.certificate.chain?.map((c) => c.x5tS256)).toEqual([x5t(pki.intermediate)]);
    const rootOnly = TrustBundle.fromPem(pki.root.pem);
    expect(certificateIdentity(r.certificate, { ...SPIFFE, trust: rootOnly })).toMatchObject({
      ok: true,
      subject: 'spiffe://example.org/ns/prod/sa/worker',
    });
  });

  it('presentedCertificate reads the configured source, and only it', () => {
    const headers = {
      'x-forwarded-client-cert': xfccElement(pki.otherTrustDomain),
      'client-cert': `:${pki.root.der.toString('base64')}:`,
      'x-edge-cert': xfccElement(pki.spiffe),
    };
    const input = { sourceCertificate: urlEncodedPem(pki.spiffe.pem), headers };
    const got = (r: ReturnType<typeof presentedCertificate>) => (r.ok ? r.certificate.x5tS256 : r.reason);
    expect(got(presentedCertificate({ kind: 'envoy' }, input))).toBe(x5t(pki.spiffe));
    expect(got(presentedCertificate({ kind: 'xfcc' }, input))).toBe(x5t(pki.otherTrustDomain));
    expect(got(presentedCertificate({ kind: 'xfcc', header: 'x-edge-cert' }, input))).toBe(x5t(pki.spiffe));
    expect(got(presentedCertificate({ kind: 'client-cert' }, input))).toBe(x5t(pki.root));
    // With source envoy, a header naming another certificate changes nothing; without Envoy's, it is missing.
    expect(got(presentedCertificate({ kind: 'envoy' }, { headers }))).toBe('mtls_certificate_missing');
  });
});

describe('certificate-bound tokens (RFC 8705)', () => {
  it("the token's cnf x5t#S256 must be the presented certificate's: cnf_x5t_mismatch otherwise", () => {
    const p = presented(pki.spiffe);
    expect(checkCertificateBinding(p, x5t(pki.spiffe))).toBeUndefined();
    expect(reason(checkCertificateBinding(p, x5t(pki.foreign)))).toBe('cnf_x5t_mismatch');
    expect(reason(checkCertificateBinding(p, 'short'))).toBe('cnf_x5t_mismatch');
  });
});

describe('the mtls identity', () => {
  it('a SPIFFE leaf of an allowed trust domain: subject = the SPIFFE ID', () => {
    expect(certificateIdentity(presented(pki.spiffe), SPIFFE)).toEqual({
      ok: true,
      subject: 'spiffe://example.org/ns/prod/sa/api',
      spiffe: { trustDomain: 'example.org', path: '/ns/prod/sa/api' },
      x5tS256: x5t(pki.spiffe),
      notAfterMs: Date.parse('2099-12-31T00:00:00Z'),
    });
  });

  it('another trust domain: mtls_trust_domain_not_allowed (403)', () => {
    expect(reason(certificateIdentity(presented(pki.otherTrustDomain), SPIFFE))).toBe('mtls_trust_domain_not_allowed');
    expect(
      certificateIdentity(presented(pki.otherTrustDomain), {
        ...SPIFFE,
        identity: { from: 'spiffe', trustDomains: ['example.org', 'other.org'] },
      }).ok,
    ).toBe(true);
  });

  it('expired or not yet valid, checked again here (with the skew): mtls_certificate_expired / _not_yet_valid', () => {
    expect(reason(certificateIdentity(presented(pki.expired), SPIFFE))).toBe('mtls_certificate_expired');
    expect(reason(certificateIdentity(presented(pki.notYetValid), SPIFFE))).toBe('mtls_certificate_not_yet_valid');
    // Within the skew of notAfter (2020-01-02T00:00:00Z) it still passes.
    expect(certificateIdentity(presented(pki.expired), SPIFFE, Date.parse('2020-01-02T00:00:20Z')).ok).toBe(true);
    expect(reason(certificateIdentity(presented(pki.expired), SPIFFE, Date.parse('2020-01-02T00:00:31Z')))).toBe(
      'mtls_certificate_expired',
    );
  });

  it('two URI SANs, none, or one that is not a valid SPIFFE ID: mtls_spiffe_id_invalid', () => {
    expect(reason(certificateIdentity(presented(pki.twoUris), SPIFFE))).toBe('mtls_spiffe_id_invalid');
    expect(reason(certificateIdentity(presented(pki.dn), SPIFFE))).toBe('mtls_spiffe_id_invalid');
    expect(
      reason(
        certificateIdentity(presented(pki.badSpiffe), {
          ...SPIFFE,
          identity: { from: 'spiffe', trustDomains: ['example.org', 'Example.ORG'] },
        }),
      ),
    ).toBe('mtls_spiffe_id_invalid');
  });

  it('a non-SPIFFE PKI: the configured DN field is the subject; absent or repeated: mtls_subject_invalid', () => {
    const cn: MtlsIdentityPolicy = { identity: { from: 'subject', field: 'CN' }, clockSkewSeconds: 30 };
    expect(certificateIdentity(presented(pki.dn), cn)).toMatchObject({ ok: true, subject: 'billing.internal' });
    expect(certificateIdentity(presented(pki.dn), { ...cn, identity: { from: 'subject', field: 'O' } })).toMatchObject({
      ok: true,
      subject: 'Acme, Inc.',
    });
    expect(
      reason(certificateIdentity(presented(pki.dn), { ...cn, identity: { from: 'subject', field: 'emailAddress' } })),
    ).toBe('mtls_subject_invalid');
    expect(reason(certificateIdentity(presented(pki.twoCns), cn))).toBe('mtls_subject_invalid');
  });

  it('XFCC with Hash but no Cert cannot give an identity: mtls_certificate_missing', () => {
    const r = certificateFromXfcc(`Hash=${hashHex(pki.spiffe)};URI=spiffe://example.org/ns/prod/sa/api`);
    if (!r.ok) throw new Error(r.reason);
    expect(reason(certificateIdentity(r.certificate, SPIFFE))).toBe('mtls_certificate_missing');
  });
});

describe('CA pinning (ca_file)', () => {
  it('a leaf of the pinned root passes; one of another CA: mtls_chain_untrusted', () => {
    const trust = TrustBundle.fromPem(pki.root.pem);
    expect(certificateIdentity(presented(pki.spiffe), { ...SPIFFE, trust }).ok).toBe(true);
    expect(reason(certificateIdentity(presented(pki.foreign), { ...SPIFFE, trust }))).toBe('mtls_chain_untrusted');
    // Without pinning, the foreign leaf passes (Envoy's validation is trusted alone).
    expect(certificateIdentity(presented(pki.foreign), SPIFFE).ok).toBe(true);
  });

  it('a leaf under an intermediate: needs the intermediate in the bundle (or in XFCC Chain); a pinned intermediate alone suffices', () => {
    const leaf = presented(pki.spiffeViaIntermediate);
    expect(reason(certificateIdentity(leaf, { ...SPIFFE, trust: TrustBundle.fromPem(pki.root.pem) }))).toBe(
      'mtls_chain_untrusted',
    );
    expect(
      certificateIdentity(leaf, { ...SPIFFE, trust: TrustBundle.fromPem(pki.root.pem + pki.intermediate.pem) }).ok,
    ).toBe(true);
    expect(certificateIdentity(leaf, { ...SPIFFE, trust: TrustBundle.fromPem(pki.intermediate.pem) }).ok).toBe(true);
  });

  it('a chain to an expired root: mtls_chain_untrusted', () => {
    const r = certificateIdentity(presented(pki.underExpiredRoot), {
      ...SPIFFE,
      trust: TrustBundle.fromPem(pki.expiredRoot.pem),
    });
    expect(r).toMatchObject({ ok: false, reason: 'mtls_chain_untrusted', detail: expect.stringContaining('expired') });
  });

  it('a CA renewed under the same name and key: the valid one is used, whatever the order in ca_file', () => {
    for (const pem of [pki.expiredRoot.pem + pki.renewedRoot.pem, pki.renewedRoot.pem + pki.expiredRoot.pem]) {
      expect(
        certificateIdentity(presented(pki.underExpiredRoot), { ...SPIFFE, trust: TrustBundle.fromPem(pem) }).ok,
      ).toBe(true);
    }
  });

  it("a CA with the issuer's name and key identifier but another key (only the signature tells): mtls_chain_untrusted", () => {
    expect(pki.impostorRoot.x509.subject).toBe(pki.root.x509.subject);
    // Names and key identifiers match: checkIssued alone would accept it.
    expect(pki.spiffe.x509.checkIssued(pki.impostorRoot.x509)).toBe(true);
    const trust = TrustBundle.fromPem(pki.impostorRoot.pem);
    expect(reason(certificateIdentity(presented(pki.spiffe), { ...SPIFFE, trust }))).toBe('mtls_chain_untrusted');
  });

  it('an "intermediate" that is not a CA (CA:FALSE, yet it signed a leaf) does not extend a chain', () => {
    const trust = TrustBundle.fromPem(pki.root.pem);
    const sub = certificateFromXfcc(
      `Cert="${urlEncodedPem(pki.signedByLeaf.pem)}";Chain="${urlEncodedPem(pki.signedByLeaf.pem + pki.notCa.pem)}"`,
    );
    if (!sub.ok) throw new Error(sub.reason);
    expect(sub.certificate.chain).toHaveLength(1);
    // Names, key identifiers and signatures chain: by-leaf <- not-ca <- root.
    expect(
      pki.signedByLeaf.x509.checkIssued(pki.notCa.x509) && pki.signedByLeaf.x509.verify(pki.notCa.x509.publicKey),
    ).toBe(true);
    expect(pki.notCa.x509.ca).toBe(false);
    expect(reason(certificateIdentity(sub.certificate, { ...SPIFFE, trust }))).toBe('mtls_chain_untrusted');
  });

  it('ca_file that is not only CA certificates is a config error naming the path', () => {
    expect(() => TrustBundle.fromPem('')).toThrow(/credentials\.mtls\.ca_file: holds no certificate/);
    expect(() => TrustBundle.fromPem('hello')).toThrow(/credentials\.mtls\.ca_file: not a PEM file/);
    expect(() => TrustBundle.fromPem(pki.spiffe.pem)).toThrow(/certificate 1 \(CN=api\) is not a CA certificate/);
    expect(TrustBundle.fromPem(pki.root.pem + pki.otherRoot.pem).anchors).toHaveLength(2);
  });
});

describe('SPIFFE IDs (the SPIFFE ID standard)', () => {
  it('valid ones', () => {
    expect(parseSpiffeId('spiffe://example.org')).toEqual({ trustDomain: 'example.org', path: '' });
    expect(parseSpiffeId('spiffe://prod.example-1_x.org/ns/Prod/sa/api.v2-x_y')).toEqual({
      trustDomain: 'prod.example-1_x.org',
      path: '/ns/Prod/sa/api.v2-x_y',
    });
    expect(parseSpiffeId(`spiffe://${'a'.repeat(255)}/x`)).toBeDefined();
  });

  it.each([
    ['upper-case scheme', 'SPIFFE://example.org/a'],
    ['other scheme', 'https://example.org/a'],
    ['upper-case trust domain', 'spiffe://Example.org/a'],
    ['port', 'spiffe://example.org:443/a'],
    ['userinfo', 'spiffe://user@example.org/a'],
    ['query', 'spiffe://example.org/a?x=1'],
    ['fragment', 'spiffe://example.org/a#f'],
    ['percent-encoding', 'spiffe://example.org/a%20b'],
    ['empty trust domain', 'spiffe:///a'],
    ['empty segment', 'spiffe://example.org/a//b'],
    ['trailing slash', 'spiffe://example.org/a/'],
    ['dot segment', 'spiffe://example.org/a/./b'],
    ['dot-dot segment', 'spiffe://example.org/a/../b'],
    ['trust domain over 255', `spiffe://${'a'.repeat(256)}/x`],
    ['over 2048 bytes', `spiffe://example.org/${'a'.repeat(2040)}`],
    ['a character outside the set', 'spiffe://example.org/a+b'],
  ])('refused: %s', (_, id) => {
    expect(parseSpiffeId(id)).toBeUndefined();
  });

  it('Node\'s subjectAltName string is read with its quoting (a value with ", " cannot smuggle a second entry)', () => {
    expect(parseSubjectAltName('URI:spiffe://a/b, DNS:x.example, IP Address:127.0.0.1')).toEqual([
      { type: 'URI', value: 'spiffe://a/b' },
      { type: 'DNS', value: 'x.example' },
      { type: 'IP Address', value: '127.0.0.1' },
    ]);
    expect(parseSubjectAltName('DNS:"a, URI:spiffe://evil/x"')).toEqual([
      { type: 'DNS', value: 'a, URI:spiffe://evil/x' },
    ]);
    expect(parseSubjectAltName(undefined)).toEqual([]);
    expect(parseSubjectAltName('DNS:"unterminated')).toBeUndefined();
    expect(parseSubjectAltName('no colon')).toBeUndefined();
  });
});
