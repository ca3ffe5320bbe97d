// The `mtls` credential kind: the caller is the workload whose client certificate Envoy verified
// (`source.certificate`, or a trusted front proxy's header: credentials.client_certificate). The
// checks are certificate.ts's: a certificate present and readable, within its validity (again
// here: a connection can outlive its certificate), its chain to ca_file when set, then its identity
// (the SPIFFE ID of its URI SAN and an allowed trust domain, or one subject DN field).
import { readFileSync } from 'node:fs';
import type { CredentialVerifier } from '../../core/deps.ts';
import { ForbiddenCredentialError, InvalidCredentialError, InvalidRequestError } from '../../core/errors.ts';
import { newIdentity } from '../../core/identity.ts';
import type { AuthzRequest, Identity } from '../../core/types.ts';
import type { MtlsConfig } from '../../policy/schema.ts';
import {
  certificateIdentity,
  presentedCertificate,
  TrustBundle,
  type CertificateRefused,
  type CertificateSource,
  type MtlsIdentityPolicy,
} from '../pop/certificate.ts';

export class MtlsVerifier implements CredentialVerifier {
  private readonly policy: MtlsIdentityPolicy;

  constructor(
    private readonly config: MtlsConfig,
    private readonly source: CertificateSource,
    trust: TrustBundle | undefined,
    private readonly now: () => number,
  ) {
    this.policy = {
      identity:
        config.identity === 'spiffe'
          ? { from: 'spiffe', trustDomains: config.trust_domains }
          : { from: 'subject', field: config.subject_field },
      clockSkewSeconds: config.clock_skew_seconds,
      ...(trust ? { trust } : {}),
    };
  }

  /** `credential` is unused: the certificate is read from where credentials.client_certificate says. */
  async verify(_credential: string, request: AuthzRequest): Promise<Identity> {
    return this.identify(request);
  }

  private identify(request: AuthzRequest): Identity {
    const presented = presentedCertificate(this.source, {
      sourceCertificate: request.peerCertificate,
      headers: request.headers,
    });
    if (!presented.ok) throw refusal(presented);
    const id = certificateIdentity(presented.certificate, this.policy, this.now());
    if (!id.ok) {
      if (id.reason === 'mtls_trust_domain_not_allowed') {
        // Who was refused, for the deny's metadata and logs: the SPIFFE ID of the certificate.
        const uri = presented.certificate.cert?.sans.find((s) => s.type === 'URI')?.value;
        throw new ForbiddenCredentialError(id.reason, newIdentity('mtls', { subject: uri, scopes: [], bound: 'mtls' }));
      }
      throw refusal(id);
    }
    const clientId =
      this.config.client_id === 'subject'
        ? id.subject
        : this.config.client_id === 'spiffe_path' && id.spiffe && id.spiffe.path !== ''
          ? id.spiffe.path.slice(1)
          : undefined;
    return newIdentity('mtls', {
      subject: id.subject,
      clientId,
      scopes: this.config.scopes,
      expiresAt: Math.floor(id.notAfterMs / 1000),
      claims: {
        'x5t#S256': id.x5tS256,
        ...(id.spiffe ? { spiffe_id: id.subject, trust_domain: id.spiffe.trustDomain } : {}),
      },
      bound: 'mtls',
    });
  }
}

function refusal(r: CertificateRefused): Error {
  switch (r.reason) {
    case 'mtls_certificate_malformed':
    case 'mtls_certificate_multiple':
      return new InvalidRequestError(r.reason);
    case 'mtls_trust_domain_not_allowed':
      // Only reached with an identity (above); never here.
      return new InvalidCredentialError('mtls_spiffe_id_invalid');
    default:
      return new InvalidCredentialError(r.reason);
  }
}

/** credentials.mtls.ca_file, read at load: an unreadable or CA-less file is a config error. */
export function loadTrustBundle(path: string): TrustBundle {
  let pem: string;
  try {
    pem = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`credentials.mtls.ca_file: cannot read ${path}: ${(e as Error).message}`, { cause: e });
  }
  return TrustBundle.fromPem(pem, 'credentials.mtls.ca_file');
}
