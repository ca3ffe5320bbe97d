// JWS signature check with node:crypto's synchronous verify. Same verdicts as jose's compactVerify
// (the hostile-token suite runs against this), without WebCrypto's promise and key-import
// machinery around each RSA or ECDSA operation, which is what a never-seen token pays for.
// Everything before this point has already been checked; this only answers "did this key sign
// exactly these bytes".
import { constants, KeyObject, verify, type VerifyKeyObjectInput } from 'node:crypto';
import { Memo } from '../../plumbing/memo.ts';
import type { VerificationKey } from './key-set.ts';

const BASE64URL = /^[A-Za-z0-9_-]+$/;

interface AlgParams {
  hash: string | null;
  options: Omit<VerifyKeyObjectInput, 'key'>;
}

const RSA: Omit<VerifyKeyObjectInput, 'key'> = { padding: constants.RSA_PKCS1_PADDING };
// RFC 7518 §3.5: the salt is as long as the hash; AUTO would accept any salt length.
const PSS: Omit<VerifyKeyObjectInput, 'key'> = {
  padding: constants.RSA_PKCS1_PSS_PADDING,
  saltLength: constants.RSA_PSS_SALTLEN_DIGEST,
};
// JWS carries ECDSA signatures as r || s (RFC 7518 §3.4), not DER.
const ECDSA: Omit<VerifyKeyObjectInput, 'key'> = { dsaEncoding: 'ieee-p1363' };

const PARAMS: Record<string, AlgParams> = {
  RS256: { hash: 'sha256', options: RSA },
  RS384: { hash: 'sha384', options: RSA },
  RS512: { hash: 'sha512', options: RSA },
  PS256: { hash: 'sha256', options: PSS },
  PS384: { hash: 'sha384', options: PSS },
  PS512: { hash: 'sha512', options: PSS },
  ES256: { hash: 'sha256', options: ECDSA },
  ES384: { hash: 'sha384', options: ECDSA },
  ES512: { hash: 'sha512', options: ECDSA },
  EdDSA: { hash: null, options: {} },
};

/** Per key (a KeySet's frozen key objects), built once: node:crypto's KeyObject with its algorithm's verify options. */
const verifyInputs = new Memo<VerificationKey, { params: AlgParams; input: VerifyKeyObjectInput }>(1024);

function verifyInputOf(vk: VerificationKey, params: AlgParams): VerifyKeyObjectInput {
  const known = verifyInputs.get(vk);
  // Keyed by the key and checked against its algorithm's parameters: options are never reused
  // for another algorithm.
  if (known?.params === params) return known.input;
  const input: VerifyKeyObjectInput = { key: KeyObject.from(vk.key), ...params.options };
  verifyInputs.set(vk, { params, input });
  return input;
}

/** True only if `vk` signed the token's `header.payload` with the key's own algorithm. */
export function signatureValid(token: string, vk: VerificationKey): boolean {
  const params = PARAMS[vk.alg];
  if (!params) return false;
  return jwsSignatureValid(token, params.hash, verifyInputOf(vk, params));
}

/**
 * node:crypto's verify input for a public key and a JWS algorithm (`EdDSA` and `Ed25519` alike), or
 * undefined for an algorithm outside the table. For keys that are not a KeySet's (a DPoP proof's
 * jwk): the caller keeps what it builds.
 */
export function jwsVerifier(
  alg: string,
  key: KeyObject,
): { hash: string | null; input: VerifyKeyObjectInput } | undefined {
  const params = PARAMS[alg === 'Ed25519' ? 'EdDSA' : alg];
  return params && { hash: params.hash, input: { key, ...params.options } };
}

/** True only if `input`'s key signed the compact JWS's `header.payload` (hash: the algorithm's). */
export function jwsSignatureValid(token: string, hash: string | null, input: VerifyKeyObjectInput): boolean {
  const dot = token.lastIndexOf('.');
  const sig = token.slice(dot + 1);
  if (dot <= 0 || !BASE64URL.test(sig)) return false;
  try {
    return verify(hash, Buffer.from(token.slice(0, dot), 'ascii'), input, Buffer.from(sig, 'base64url'));
  } catch {
    // A signature of the wrong length or shape for the key: not valid, never an error.
    return false;
  }
}
