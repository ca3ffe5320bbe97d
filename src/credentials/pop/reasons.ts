// Every refusal of the proof-of-possession checks: its HTTP status, the `error` its challenge
// carries, and on which scheme (RFC 9449, §7.1 for DPoP; RFC 8705, §3 and RFC 6750, §3.1 for
// certificate-bound and Bearer tokens). The decision path turns a reason into the answer.

/** The `error` auth-param of a challenge. */
export type ChallengeError = 'invalid_dpop_proof' | 'use_dpop_nonce' | 'invalid_token' | 'invalid_request';

export interface PopReasonInfo {
  status: 400 | 401 | 403 | 503;
  /** The `error` of the challenge; absent: the challenge carries no error (no credential sent). */
  error?: ChallengeError;
  /** The scheme whose challenge carries the error. */
  scheme: 'DPoP' | 'Bearer';
  /** Also send `DPoP-Nonce` with the current nonce. */
  nonce?: true;
  /** For the operator (logs) and `error_description`: what was wrong, never a value from the request. */
  description: string;
}

const dpop = (description: string): PopReasonInfo => ({
  status: 401,
  error: 'invalid_dpop_proof',
  scheme: 'DPoP',
  description,
});
const dpopToken = (description: string): PopReasonInfo => ({
  status: 401,
  error: 'invalid_token',
  scheme: 'DPoP',
  description,
});
const bearerToken = (description: string): PopReasonInfo => ({
  status: 401,
  error: 'invalid_token',
  scheme: 'Bearer',
  description,
});

export const POP_REASONS = {
  // The DPoP proof (RFC 9449, §4.3).
  dpop_proof_missing: dpop('the request has Authorization: DPoP but no DPoP proof header'),
  dpop_proof_multiple: dpop('more than one DPoP header'),
  dpop_proof_too_large: dpop('the DPoP proof is larger than the limit'),
  dpop_proof_malformed: dpop('the DPoP proof is not a well-formed compact JWS'),
  dpop_typ_invalid: dpop('the DPoP proof typ is not dpop+jwt'),
  dpop_alg_not_allowed: dpop('the DPoP proof alg is not an accepted asymmetric algorithm'),
  dpop_jwk_invalid: dpop('the DPoP proof jwk is missing, private, or not a public key for its alg'),
  dpop_signature_invalid: dpop('the DPoP proof signature does not verify with its jwk'),
  dpop_claim_missing: dpop('the DPoP proof lacks a required claim (jti, htm, htu, iat, ath)'),
  dpop_claim_invalid: dpop('a DPoP proof claim has the wrong type or is too long'),
  dpop_htm_mismatch: dpop('the DPoP proof htm is not the request method'),
  dpop_htu_mismatch: dpop('the DPoP proof htu is not the request URI'),
  dpop_iat_invalid: dpop('the DPoP proof iat is too old or in the future'),
  dpop_ath_mismatch: dpop('the DPoP proof ath is not the hash of the access token'),
  dpop_replayed: dpop('the DPoP proof was already used'),
  dpop_nonce_required: {
    status: 401,
    error: 'use_dpop_nonce',
    scheme: 'DPoP',
    nonce: true,
    description: 'a DPoP nonce is required',
  },
  dpop_nonce_invalid: {
    status: 401,
    error: 'use_dpop_nonce',
    scheme: 'DPoP',
    nonce: true,
    description: 'the DPoP nonce is unknown or expired',
  },
  // The binding between token and proof key (RFC 9449, §6, §7.1, §7.2).
  dpop_key_mismatch: dpopToken('the DPoP proof key is not the key the token is bound to'),
  dpop_token_not_bound: dpopToken('a token sent with Authorization: DPoP is not bound to a DPoP key (no cnf.jkt)'),
  dpop_bound_token_as_bearer: bearerToken('the token is DPoP-bound: send it with Authorization: DPoP and a proof'),
  dpop_required: { status: 401, scheme: 'DPoP', description: 'this route requires a DPoP-bound token' },
  // The token's cnf claim or introspection member (RFC 7800, RFC 8705, RFC 9449).
  cnf_invalid: bearerToken('the token cnf is not an object with a valid jkt or x5t#S256'),
  cnf_unsupported: bearerToken('the token is bound by a cnf member this server cannot check'),
  // Certificate-bound tokens (RFC 8705, §3).
  cnf_x5t_mismatch: bearerToken('the token is bound to another client certificate'),
  mtls_binding_required: bearerToken('this route requires a token bound to the client certificate'),
  sender_constraint_required: bearerToken('this route requires a sender-constrained (DPoP or certificate-bound) token'),
  // The client certificate (certificate-bound tokens and the mtls credential).
  mtls_certificate_missing: { status: 401, scheme: 'Bearer', description: 'no client certificate was presented' },
  mtls_certificate_source_untrusted: {
    status: 401,
    scheme: 'Bearer',
    description: 'the certificate header was not written by a proxy listed as trusted',
  },
  mtls_certificate_multiple: {
    status: 400,
    error: 'invalid_request',
    scheme: 'Bearer',
    description: 'more than one client-certificate header value',
  },
  mtls_certificate_malformed: {
    status: 400,
    error: 'invalid_request',
    scheme: 'Bearer',
    description: 'the client certificate could not be read',
  },
  mtls_certificate_expired: bearerToken('the client certificate has expired'),
  mtls_certificate_not_yet_valid: bearerToken('the client certificate is not valid yet'),
  mtls_chain_untrusted: bearerToken('the client certificate does not chain to a CA in ca_file'),
  mtls_spiffe_id_invalid: bearerToken('the client certificate has no valid SPIFFE ID (exactly one URI SAN)'),
  mtls_trust_domain_not_allowed: {
    status: 403,
    scheme: 'Bearer',
    description: 'the client certificate is from a trust domain that is not allowed',
  },
  mtls_subject_invalid: bearerToken(
    'the client certificate subject lacks the configured field, or has it more than once',
  ),
} as const satisfies Record<string, PopReasonInfo>;

export type PopReason = keyof typeof POP_REASONS;
export type DpopReason = Extract<PopReason, `dpop_${string}`>;
export type CertificateReason = Extract<PopReason, `mtls_${string}` | 'cnf_x5t_mismatch'>;
