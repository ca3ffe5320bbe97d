// The client certificate of a request: where it comes from, its RFC 8705 thumbprint, the workload
// identity it names, its validity, and (optionally) its chain to a pinned CA bundle.
//
// Sources (docs/proof-of-possession.md, "Where the certificate comes from"):
//   envoy        `source.certificate`: the leaf Envoy verified on this connection, URL-encoded PEM
//                (Envoy's ext_authz filter needs include_peer_certificate: true).
//   xfcc         `x-forwarded-client-cert` in Envoy's format, written by the proxy that terminated
//                the client's TLS. The element used is the last one, or the one `trusted_hops`
//                before it when that many trusted proxies behind it append their own.
//   client-cert  RFC 9440 `Client-Cert: :<base64 DER>:`, from a proxy that strips client copies.
// A header source is only as good as the proxies in front: it is read only when configured.
//
// Nothing here throws on request input; every refusal is a reason (reasons.ts).
import { createHash, timingSafeEqual, X509Certificate } from 'node:crypto';
import { LRUCache } from 'lru-cache';
import { POP_REASONS, type CertificateReason } from './reasons.ts';

/** Longest certificate header or attribute read at all (a leaf is 1-3 KiB, URL-encoded PEM ~1.4x). */
export const MAX_CERTIFICATE_INPUT = 32 * 1024;
/** Most XFCC elements (one per proxy hop) and key=value pairs per element read. */
const MAX_XFCC_ELEMENTS = 16;
const MAX_XFCC_PAIRS = 64;

export interface CertificateRefused {
  ok: false;
  reason: CertificateReason;
  /** For the operator; never a value from the request. */
  detail: string;
}

function refuse(reason: CertificateReason, detail?: string): CertificateRefused {
  return { ok: false, reason, detail: detail ?? POP_REASONS[reason].description };
}

/** A certificate read from DER, with what every check needs computed once. */
export interface ParsedCertificate {
  x509: X509Certificate;
  /** base64url SHA-256 of the DER (RFC 8705, §3.1 `x5t#S256`). */
  x5tS256: string;
  notBeforeMs: number;
  notAfterMs: number;
  /** Subject alternative names, in certificate order. */
  sans: readonly { type: string; value: string }[];
}

/** The certificate a request presents. */
export interface PresentedCertificate {
  from: 'envoy' | 'xfcc' | 'client-cert';
  /** Always known: from the certificate, or from XFCC `Hash` when the element has no `Cert`. */
  x5tS256: string;
  /** The certificate itself; absent only for an XFCC element that carries `Hash` but no `Cert`. */
  cert?: ParsedCertificate;
  /** Further certificates the source sent (XFCC `Chain` without the leaf): untrusted intermediates. */
  chain?: readonly ParsedCertificate[];
}

export type PresentedResult = { ok: true; certificate: PresentedCertificate } | CertificateRefused;

// Parsed certificates by their exact DER (base64): workloads present the same one on every request.
const parsedCache = new LRUCache<string, ParsedCertificate | 'invalid'>({ max: 1024 });

function fromDer(der: Buffer): ParsedCertificate | undefined {
  const cacheKey = der.toString('base64');
  const hit = parsedCache.get(cacheKey);
  if (hit !== undefined) return hit === 'invalid' ? undefined : hit;
  let parsed: ParsedCertificate | undefined;
  try {
    const x509 = new X509Certificate(der);
    // Trailing bytes after the certificate are not part of it: refuse rather than hash two readings.
    if (!x509.raw.equals(der)) throw new Error('trailing data');
    const notBeforeMs = Date.parse(x509.validFrom);
    const notAfterMs = Date.parse(x509.validTo);
    if (!Number.isFinite(notBeforeMs) || !Number.isFinite(notAfterMs)) throw new Error('validity');
    const sans = parseSubjectAltName(x509.subjectAltName);
    if (!sans) throw new Error('subjectAltName');
    parsed = {
      x509,
      x5tS256: createHash('sha256').update(x509.raw).digest('base64url'),
      notBeforeMs,
      notAfterMs,
      sans,
    };
  } catch {
    parsed = undefined;
  }
  parsedCache.set(cacheKey, parsed ?? 'invalid');
  return parsed;
}

const PEM_BLOCK = /-----BEGIN CERTIFICATE-----\r?\n([A-Za-z0-9+/=\r\n]+?)-----END CERTIFICATE-----/g;

/** Every CERTIFICATE block of a PEM text, as DER; undefined when there is other content. */
function pemBlocks(pem: string): Buffer[] | undefined {
  const out: Buffer[] = [];
  let rest = pem;
  for (const m of pem.matchAll(PEM_BLOCK)) {
    out.push(Buffer.from(m[1].replace(/\s+/g, ''), 'base64'));
    rest = rest.replace(m[0], '');
  }
  return rest.trim() === '' ? out : undefined;
}

/** One certificate from a URL-encoded PEM (Envoy's `source.certificate`, XFCC `Cert`). */
function fromUrlEncodedPem(value: string): ParsedCertificate | undefined {
  let pem: string;
  try {
    pem = decodeURIComponent(value);
  } catch {
    return undefined;
  }
  const blocks = pemBlocks(pem);
  if (!blocks || blocks.length !== 1) return undefined;
  return fromDer(blocks[0]);
}

/**
 * Node's `subjectAltName` string (`URI:spiffe://a/b, DNS:x`; a value with special characters is
 * JSON-quoted) as a list, or undefined when it does not read as that format.
 */
export function parseSubjectAltName(san: string | undefined): { type: string; value: string }[] | undefined {
  const out: { type: string; value: string }[] = [];
  if (san === undefined || san === '') return out;
  let i = 0;
  while (i < san.length) {
    const colon = san.indexOf(':', i);
    if (colon === -1) return undefined;
    const type = san.slice(i, colon);
    let value: string;
    let next: number;
    if (san[colon + 1] === '"') {
      let j = colon + 2;
      while (j < san.length && san[j] !== '"') j += san[j] === '\\' ? 2 : 1;
      if (j >= san.length) return undefined;
      try {
        value = JSON.parse(san.slice(colon + 1, j + 1)) as string;
      } catch {
        return undefined;
      }
      next = j + 1;
    } else {
      const end = san.indexOf(', ', colon + 1);
      next = end === -1 ? san.length : end;
      value = san.slice(colon + 1, next);
    }
    out.push({ type, value });
    if (next === san.length) break;
    if (!san.startsWith(', ', next)) return undefined;
    i = next + 2;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Sources

/** Envoy's `attributes.source.certificate`. Empty or absent: no certificate. */
export function certificateFromEnvoy(value: string | undefined): PresentedResult {
  if (value === undefined || value === '')
    return refuse(
      'mtls_certificate_missing',
      'Envoy sent no peer certificate (TLS without a client certificate, or include_peer_certificate is not set)',
    );
  if (value.length > MAX_CERTIFICATE_INPUT)
    return refuse('mtls_certificate_malformed', 'the peer certificate is larger than the limit');
  const cert = fromUrlEncodedPem(value);
  if (!cert) return refuse('mtls_certificate_malformed', 'source.certificate is not one URL-encoded PEM certificate');
  return { ok: true, certificate: { from: 'envoy', x5tS256: cert.x5tS256, cert } };
}

/** RFC 9440 `Client-Cert`: an sf-binary, `:` base64(DER) `:`. */
export function certificateFromClientCertHeader(value: string | undefined): PresentedResult {
  if (value === undefined || value.trim() === '') return refuse('mtls_certificate_missing', 'no Client-Cert header');
  if (value.length > MAX_CERTIFICATE_INPUT)
    return refuse('mtls_certificate_malformed', 'the Client-Cert header is larger than the limit');
  // Envoy joins repeated headers with ","; a byte sequence never contains one.
  if (value.includes(',')) return refuse('mtls_certificate_multiple', 'more than one Client-Cert header');
  const m = /^:([A-Za-z0-9+/]+={0,2}):$/.exec(value.trim());
  if (!m || m[1].length % 4 !== 0) return refuse('mtls_certificate_malformed', 'Client-Cert is not :base64(DER):');
  const cert = fromDer(Buffer.from(m[1], 'base64'));
  if (!cert) return refuse('mtls_certificate_malformed', 'Client-Cert does not hold one DER certificate');
  return { ok: true, certificate: { from: 'client-cert', x5tS256: cert.x5tS256, cert } };
}

/** One XFCC element: keys lower-cased; values unquoted, in order. */
export type XfccElement = ReadonlyMap<string, readonly string[]>;

/**
 * Envoy's x-forwarded-client-cert: elements separated by ",", pairs by ";", key "=" value; a value
 * may be double-quoted (then `\"` is a quote and `,;=` are literal). Undefined when malformed.
 * https://www.envoyproxy.io/docs/envoy/latest/configuration/http/http_conn_man/headers#x-forwarded-client-cert
 */
export function parseXfcc(header: string): XfccElement[] | undefined {
  const elements: XfccElement[] = [];
  let element = new Map<string, string[]>();
  let pairs = 0;
  let i = 0;
  const n = header.length;
  for (;;) {
    // key
    const eq = header.indexOf('=', i);
    if (eq === -1) return undefined;
    const key = header.slice(i, eq).trim().toLowerCase();
    if (!/^[a-z]+$/.test(key)) return undefined;
    // value
    let j = eq + 1;
    let value = '';
    if (header[j] === '"') {
      j++;
      for (;;) {
        if (j >= n) return undefined;
        const c = header[j];
        if (c === '\\' && header[j + 1] === '"') {
          value += '"';
          j += 2;
        } else if (c === '"') {
          j++;
          break;
        } else {
          value += c;
          j++;
        }
      }
    } else {
      while (j < n && header[j] !== ';' && header[j] !== ',') j++;
      value = header.slice(eq + 1, j).trim();
      if (value.includes('"')) return undefined;
    }
    if (++pairs > MAX_XFCC_PAIRS) return undefined;
    const list = element.get(key);
    if (list) list.push(value);
    else element.set(key, [value]);
    while (j < n && header[j] === ' ') j++;
    if (j >= n) {
      elements.push(element);
      return elements;
    }
    if (header[j] === ',') {
      elements.push(element);
      if (elements.length >= MAX_XFCC_ELEMENTS) return undefined;
      element = new Map();
      pairs = 0;
    } else if (header[j] !== ';') {
      return undefined;
    }
    i = j + 1;
  }
}

export interface XfccSource {
  /**
   * Trusted proxies between the one that verified the client and Envoy that each append an element
   * (default 0: the last element).
   */
  trustedHops?: number;
  /** When set, the element's `By` (the URI SAN of the proxy that wrote it) must be one of these. */
  by?: readonly string[];
}

const SINGLE_XFCC_KEYS = ['hash', 'cert', 'chain', 'subject'];

/** The client certificate from an XFCC header, per the trust model in XfccSource. */
export function certificateFromXfcc(header: string | undefined, source: XfccSource = {}): PresentedResult {
  if (header === undefined || header.trim() === '')
    return refuse('mtls_certificate_missing', 'no x-forwarded-client-cert header');
  if (header.length > MAX_CERTIFICATE_INPUT * 4)
    return refuse('mtls_certificate_malformed', 'the x-forwarded-client-cert header is larger than the limit');
  const elements = parseXfcc(header);
  if (!elements) return refuse('mtls_certificate_malformed', "x-forwarded-client-cert is not in Envoy's format");
  const hops = source.trustedHops ?? 0;
  const element = elements[elements.length - 1 - hops];
  if (!element)
    return refuse(
      'mtls_certificate_missing',
      `x-forwarded-client-cert has ${elements.length} element(s); trusted_hops ${hops} needs at least ${hops + 1}`,
    );
  for (const k of SINGLE_XFCC_KEYS)
    if ((element.get(k)?.length ?? 0) > 1)
      return refuse('mtls_certificate_malformed', `the x-forwarded-client-cert element has ${k} more than once`);
  if (source.by && !(element.get('by') ?? []).some((b) => source.by!.includes(b))) {
    return refuse(
      'mtls_certificate_source_untrusted',
      'the x-forwarded-client-cert element was not written by a proxy listed in `by`',
    );
  }

  const hash = element.get('hash')?.[0];
  if (hash !== undefined && !/^[0-9a-fA-F]{64}$/.test(hash))
    return refuse('mtls_certificate_malformed', 'the x-forwarded-client-cert Hash is not a SHA-256 in hex');
  const hashX5t = hash === undefined ? undefined : Buffer.from(hash, 'hex').toString('base64url');

  const certValue = element.get('cert')?.[0];
  if (certValue === undefined || certValue === '') {
    if (!hashX5t)
      return refuse('mtls_certificate_missing', 'the x-forwarded-client-cert element has neither Cert nor Hash');
    return { ok: true, certificate: { from: 'xfcc', x5tS256: hashX5t } };
  }
  if (certValue.length > MAX_CERTIFICATE_INPUT)
    return refuse('mtls_certificate_malformed', 'the x-forwarded-client-cert Cert is larger than the limit');
  const cert = fromUrlEncodedPem(certValue);
  if (!cert)
    return refuse(
      'mtls_certificate_malformed',
      'the x-forwarded-client-cert Cert is not one URL-encoded PEM certificate',
    );
  if (hashX5t !== undefined && hashX5t !== cert.x5tS256)
    return refuse('mtls_certificate_malformed', 'the x-forwarded-client-cert Hash is not the hash of its Cert');

  let chain: ParsedCertificate[] | undefined;
  const chainValue = element.get('chain')?.[0];
  if (chainValue) {
    let pem: string;
    try {
      pem = decodeURIComponent(chainValue);
    } catch {
      return refuse('mtls_certificate_malformed', 'the x-forwarded-client-cert Chain is not URL-encoded PEM');
    }
    const blocks = pemBlocks(pem);
    if (!blocks || blocks.length > 8)
      return refuse('mtls_certificate_malformed', 'the x-forwarded-client-cert Chain is not URL-encoded PEM');
    chain = [];
    for (const der of blocks) {
      const c = fromDer(der);
      if (!c)
        return refuse(
          'mtls_certificate_malformed',
          'the x-forwarded-client-cert Chain holds an unreadable certificate',
        );
      if (c.x5tS256 !== cert.x5tS256) chain.push(c); // Envoy's Chain includes the leaf
    }
  }
  return { ok: true, certificate: { from: 'xfcc', x5tS256: cert.x5tS256, cert, ...(chain ? { chain } : {}) } };
}

/** Where `credentials.mtls` (and certificate-bound tokens) read the client certificate. */
export type CertificateSource =
  { kind: 'envoy' } | ({ kind: 'xfcc'; header?: string } & XfccSource) | { kind: 'client-cert'; header?: string };

/** The certificate of a request from the configured source. `headers`: Envoy's lower-cased request headers. */
export function presentedCertificate(
  source: CertificateSource,
  input: { sourceCertificate?: string; headers: Readonly<Record<string, string>> },
): PresentedResult {
  switch (source.kind) {
    case 'envoy':
      return certificateFromEnvoy(input.sourceCertificate);
    case 'xfcc':
      return certificateFromXfcc(input.headers[source.header ?? 'x-forwarded-client-cert'], source);
    case 'client-cert':
      return certificateFromClientCertHeader(input.headers[source.header ?? 'client-cert']);
  }
}

// ---------------------------------------------------------------------------------------------
// Checks

/** RFC 8705, §3: the presented certificate is the one the token is bound to. */
export function checkCertificateBinding(
  presented: PresentedCertificate,
  cnfX5tS256: string,
): CertificateRefused | undefined {
  const a = Buffer.from(presented.x5tS256);
  const b = Buffer.from(cnfX5tS256);
  return a.length === b.length && timingSafeEqual(a, b) ? undefined : refuse('cnf_x5t_mismatch');
}

/** notBefore ≤ now + skew and now - skew ≤ notAfter. */
export function checkValidity(
  cert: ParsedCertificate,
  nowMs: number,
  clockSkewSeconds: number,
): CertificateRefused | undefined {
  const skew = clockSkewSeconds * 1000;
  if (nowMs - skew > cert.notAfterMs) return refuse('mtls_certificate_expired');
  if (nowMs + skew < cert.notBeforeMs) return refuse('mtls_certificate_not_yet_valid');
  return undefined;
}

export interface SpiffeId {
  trustDomain: string;
  /** "" or "/seg/seg...". */
  path: string;
}

const TRUST_DOMAIN = /^[a-z0-9._-]+$/;
const PATH_SEGMENT = /^[A-Za-z0-9._-]+$/;

/**
 * A SPIFFE ID by the SPIFFE ID standard: `spiffe://` then a trust domain of [a-z0-9._-] (at most
 * 255 bytes; so no userinfo, port, upper case or percent-encoding), then zero or more path segments
 * of [A-Za-z0-9._-], none empty, "." or ".."; no trailing "/", query or fragment; at most 2048 bytes.
 * https://github.com/spiffe/spiffe/blob/main/standards/SPIFFE-ID.md
 */
export function parseSpiffeId(id: string): SpiffeId | undefined {
  if (id.length > 2048 || !id.startsWith('spiffe://')) return undefined;
  const rest = id.slice('spiffe://'.length);
  const slash = rest.indexOf('/');
  const trustDomain = slash === -1 ? rest : rest.slice(0, slash);
  const path = slash === -1 ? '' : rest.slice(slash);
  if (trustDomain.length === 0 || trustDomain.length > 255 || !TRUST_DOMAIN.test(trustDomain)) return undefined;
  if (path !== '') {
    for (const seg of path.slice(1).split('/')) {
      if (seg === '.' || seg === '..' || !PATH_SEGMENT.test(seg)) return undefined;
    }
  }
  return { trustDomain, path };
}

export type MtlsIdentitySource =
  /** The SPIFFE ID in the only URI SAN (X509-SVID); its trust domain must be listed. */
  | { from: 'spiffe'; trustDomains: readonly string[] }
  /** One subject DN attribute (OpenSSL short name: CN, O, OU, emailAddress, serialNumber...), present exactly once. */
  | { from: 'subject'; field: string };

export interface MtlsIdentityPolicy {
  identity: MtlsIdentitySource;
  clockSkewSeconds: number;
  /** `credentials.mtls.ca_file`: re-verify the chain. */
  trust?: TrustBundle;
}

export interface CertificateIdentity {
  ok: true;
  /** The identity subject: the SPIFFE ID, or the DN attribute's value. */
  subject: string;
  spiffe?: SpiffeId;
  x5tS256: string;
  notAfterMs: number;
}

/**
 * The workload a certificate names, after the checks in order: a full certificate → its validity →
 * its chain (when ca_file is set) → the identity (SPIFFE ID and trust domain, or the DN field).
 */
export function certificateIdentity(
  presented: PresentedCertificate,
  policy: MtlsIdentityPolicy,
  nowMs = Date.now(),
): CertificateIdentity | CertificateRefused {
  const cert = presented.cert;
  if (!cert)
    return refuse(
      'mtls_certificate_missing',
      'the x-forwarded-client-cert element has a Hash but no Cert; an identity needs the certificate (Envoy: set_current_client_cert_details: { cert: true })',
    );
  const invalid = checkValidity(cert, nowMs, policy.clockSkewSeconds);
  if (invalid) return invalid;
  if (policy.trust) {
    const untrusted = policy.trust.verify(cert, nowMs, policy.clockSkewSeconds, presented.chain);
    if (untrusted) return untrusted;
  }
  const base = { ok: true as const, x5tS256: cert.x5tS256, notAfterMs: cert.notAfterMs };
  if (policy.identity.from === 'spiffe') {
    const uris = cert.sans.filter((s) => s.type === 'URI');
    if (uris.length !== 1)
      return refuse(
        'mtls_spiffe_id_invalid',
        `the certificate has ${uris.length} URI SANs; an X509-SVID has exactly one`,
      );
    const id = parseSpiffeId(uris[0].value);
    if (!id) return refuse('mtls_spiffe_id_invalid', 'the certificate URI SAN is not a valid SPIFFE ID');
    if (!policy.identity.trustDomains.includes(id.trustDomain)) return refuse('mtls_trust_domain_not_allowed');
    return { ...base, subject: `spiffe://${id.trustDomain}${id.path}`, spiffe: id };
  }
  const value = (cert.x509.toLegacyObject().subject as unknown as Record<string, string | string[] | undefined>)[
    policy.identity.field
  ];
  if (typeof value !== 'string')
    return refuse(
      'mtls_subject_invalid',
      `the certificate subject has ${Array.isArray(value) ? 'more than one' : 'no'} ${policy.identity.field}`,
    );
  if (value.length === 0 || value.length > 256 || /[\x00-\x1f\x7f]/.test(value))
    return refuse(
      'mtls_subject_invalid',
      `the certificate subject ${policy.identity.field} is empty, longer than 256 characters or has control characters`,
    );
  return { ...base, subject: value };
}

// ---------------------------------------------------------------------------------------------
// CA pinning

/**
 * The CAs of `credentials.mtls.ca_file`. Every certificate in it is a trust anchor: a chain is
 * trusted once it reaches one (a pinned intermediate is enough; its own issuer need not be there).
 *
 * Checked for each link, leaf to anchor: the issuer's subject and key identifiers match
 * (X509Certificate.checkIssued), the signature verifies with the issuer's key, the issuer is a CA
 * (basicConstraints), and every certificate on the path is within its validity (± skew).
 * Intermediates come from the bundle or from the request's XFCC `Chain`; a path is at most 8 long.
 * NOT checked: revocation (CRL, OCSP), name constraints, path-length constraints, key usage and
 * extended key usage, certificate policies. Envoy's own validation (which can check CRLs and SANs)
 * stays the first line; this re-verification guards against a front that trusts more than it should.
 */
export class TrustBundle {
  private constructor(readonly anchors: readonly ParsedCertificate[]) {}

  /** Throws an operator-facing Error naming `configPath` when the text holds no usable CA. */
  static fromPem(pem: string, configPath = 'credentials.mtls.ca_file'): TrustBundle {
    const blocks = pemBlocks(pem);
    if (!blocks) throw new Error(`${configPath}: not a PEM file of CERTIFICATE blocks only`);
    if (blocks.length === 0)
      throw new Error(
        `${configPath}: holds no certificate; put the PEM CA certificates your client certificates chain to there`,
      );
    const anchors: ParsedCertificate[] = [];
    blocks.forEach((der, i) => {
      const c = fromDer(der);
      if (!c) throw new Error(`${configPath}: certificate ${i + 1} cannot be read`);
      if (!c.x509.ca)
        throw new Error(
          `${configPath}: certificate ${i + 1} (${c.x509.subject.replace(/\n/g, ', ')}) is not a CA certificate (basicConstraints CA:TRUE); list only CAs`,
        );
      anchors.push(c);
    });
    return new TrustBundle(anchors);
  }

  /** undefined when `leaf` chains to an anchor; otherwise why not. */
  verify(
    leaf: ParsedCertificate,
    nowMs: number,
    clockSkewSeconds: number,
    intermediates: readonly ParsedCertificate[] = [],
  ): CertificateRefused | undefined {
    const skew = clockSkewSeconds * 1000;
    const valid = (c: ParsedCertificate) => nowMs - skew <= c.notAfterMs && nowMs + skew >= c.notBeforeMs;
    const issues = (issuer: ParsedCertificate, child: ParsedCertificate) => {
      try {
        return issuer.x509.ca && child.x509.checkIssued(issuer.x509) && child.x509.verify(issuer.x509.publicKey);
      } catch {
        return false;
      }
    };
    let current = leaf;
    let expiredOnPath = false;
    for (let depth = 0; depth < 8; depth++) {
      // Several anchors may match (a CA renewed under the same name and key): any valid one will do.
      const anchors = this.anchors.filter((a) => issues(a, current));
      if (anchors.some(valid)) return undefined;
      if (anchors.length > 0) expiredOnPath = true;
      const next = intermediates.find((c) => c !== current && issues(c, current) && valid(c));
      if (!next) break;
      current = next;
    }
    return refuse(
      'mtls_chain_untrusted',
      expiredOnPath
        ? 'the client certificate chains to a CA in ca_file that is expired or not yet valid'
        : 'the client certificate does not chain to a CA in ca_file',
    );
  }
}
