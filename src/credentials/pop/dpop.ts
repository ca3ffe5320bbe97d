// DPoP proof verification for a resource server: every check of RFC 9449, §4.3, and the binding
// of the proof key to the access token (RFC 9449, §6, §7.1).
//
// Order: the token must be bound (cnf.jkt) → exactly one proof, of bounded size → JOSE header:
// typ, alg (asymmetric, listed), jwk (public, matching the alg) → the signature with that jwk
// (node:crypto) → claims jti, htm, htu, iat present and typed → htm → htu → iat window → nonce →
// ath → the jwk's thumbprint equals cnf.jkt. Single use (jti) is checked last, by
// checkDpopReplay(), so that a proof failing any other check never takes a place in the replay
// cache.
//
// Never throws on request input: every failure is a result with a reason (reasons.ts); nothing
// from the proof is copied into a reason or a description.
import { createHash, createPublicKey, hash, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { JWK } from 'jose';
import { LRUCache } from 'lru-cache';
import { normalizeHtu } from './htu.ts';
import type { NonceCheck } from './nonce.ts';
import { POP_REASONS, type ChallengeError, type DpopReason } from './reasons.ts';
import { DPOP_ALGORITHM_NAMES } from '../../policy/pop-schema.ts';
import { replayKey, type ReplayCache } from '../../stores/replay-cache.ts';
import { jwsSignatureValid, jwsVerifier } from '../jwt/signature.ts';

/** The JWS algorithms a proof may use: asymmetric only (never none, never HMAC); the config's list. */
export const DPOP_ALGORITHMS = DPOP_ALGORITHM_NAMES;
export type DpopAlgorithm = (typeof DPOP_ALGORITHMS)[number];
const KNOWN_ALGS: ReadonlySet<string> = new Set(DPOP_ALGORITHMS);

/** Default upper bound of a proof (the header value): an RSA-4096 proof is about 1.2 KiB. */
export const DEFAULT_MAX_PROOF_BYTES = 8192;
/** Longest `jti` accepted (RFC 9449, §11.1: servers should refuse over-large ones). */
export const MAX_JTI_LENGTH = 256;

export interface DpopPolicy {
  /** Accepted `alg` values; any outside DPOP_ALGORITHMS are ignored. */
  algorithms: readonly string[];
  /** A proof older than this (by its `iat`) is refused, plus the skew. */
  maxAgeSeconds: number;
  /** Leeway for clocks: for old proofs, and how far in the future `iat` may be. */
  clockSkewSeconds: number;
  /** Present when nonces are required (`nonce: required`): checks a proof's `nonce` claim. */
  nonces?: { check(nonce: unknown, nowMs: number): NonceCheck };
  /** Upper bound of the proof header value, bytes (default 8 KiB). */
  maxProofBytes?: number;
}

export interface DpopRequest {
  /**
   * The `DPoP` request header: Envoy's merged value (repeated headers joined with ","), or each
   * value separately (`header_map` with `encode_raw_headers`). undefined: no header.
   */
  proof: string | readonly string[] | undefined;
  /** `:method`. */
  method: string;
  /** The request's normalized htu (requestHtu()); undefined when it could not be rebuilt. */
  htu: string | undefined;
  /** The access token exactly as sent after `Authorization: DPoP `. */
  accessToken: string;
  /** The token's `cnf.jkt` (readConfirmation()); undefined when the token is not DPoP-bound. */
  cnfJkt: string | undefined;
  /** Now, ms since the epoch (default Date.now()). */
  nowMs?: number;
}

export interface DpopVerified {
  ok: true;
  /** The proof key's RFC 7638 SHA-256 thumbprint (= cnf.jkt). */
  jkt: string;
  jti: string;
  iat: number;
  /** For the replay cache: replayKey(jkt, jti) and when the proof stops being acceptable anyway. */
  replay: { key: string; expiresAtMs: number };
  /** The proof's nonce was from the previous window: send the current one with the answer. */
  renewNonce: boolean;
}

export interface DpopRefused {
  ok: false;
  reason: DpopReason;
  /** The `error` of the `WWW-Authenticate: DPoP` challenge. */
  error: ChallengeError;
  /** For the operator: which check failed and, for iat, by how much. No value from the proof. */
  detail: string;
}

export type DpopResult = DpopVerified | DpopRefused;

function refuse(reason: DpopReason, detail?: string): DpopRefused {
  const info = POP_REASONS[reason];
  return {
    ok: false,
    reason,
    error: ('error' in info ? info.error : 'invalid_dpop_proof') as ChallengeError,
    detail: detail ?? info.description,
  };
}

// The signature may be empty here so that an unsigned `alg: none` proof is refused for its alg.
// A client signs every proof with the same header (typ, alg, its jwk): what the header yields (the
// key's thumbprint and its node:crypto key, which costs more to build than the signature check) is
// kept by the header's text. A function of that text alone, so a hit is the same answer as a miss;
// the algorithm is checked against the policy again on every use, since a reload may change it. The
// check itself is node:crypto's synchronous verify, as for access tokens (../jwt/signature.ts).
type ProofVerifier = NonNullable<ReturnType<typeof jwsVerifier>>;
interface ProofHeader {
  ok: true;
  alg: string;
  jkt: string;
  verifier: ProofVerifier;
}
const proofHeaders = new LRUCache<string, ProofHeader>({ max: 4096 });
/** Longer headers (an RSA key over 4096 bits) are checked every time rather than kept. */
const MAX_KEPT_HEADER = 2048;

const COMPACT_JWS = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;
const B64URL = /^[A-Za-z0-9_-]+$/;
const PRIVATE_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

function jsonObject(b64url: string): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(Buffer.from(b64url, 'base64url').toString('utf8'));
    return value !== null && typeof value === 'object' && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : undefined;
  } catch {
    return undefined;
  }
}

/** `typ` compared as jose compares media types: case-insensitive, `application/` optional. */
function isDpopTyp(typ: unknown): boolean {
  if (typeof typ !== 'string') return false;
  const t = typ.toLowerCase();
  return t === 'dpop+jwt' || t === 'application/dpop+jwt';
}

/** The key type (and curve) each algorithm needs. */
function expectedKey(alg: string): { kty: 'EC' | 'RSA' | 'OKP'; crv?: string } {
  switch (alg) {
    case 'ES256':
      return { kty: 'EC', crv: 'P-256' };
    case 'ES384':
      return { kty: 'EC', crv: 'P-384' };
    case 'ES512':
      return { kty: 'EC', crv: 'P-521' };
    case 'EdDSA':
    case 'Ed25519':
      return { kty: 'OKP', crv: 'Ed25519' };
    default:
      return { kty: 'RSA' };
  }
}

const b64member = (v: unknown, max: number): v is string =>
  typeof v === 'string' && v.length > 0 && v.length <= max && B64URL.test(v);

/**
 * The public key's required members (RFC 7638, §3.2), in lexicographic order, or undefined when
 * the jwk is not a public key of the type `alg` needs. Also the input to its thumbprint.
 */
function publicJwk(jwk: unknown, alg: string): JWK | undefined {
  if (jwk === null || typeof jwk !== 'object' || Array.isArray(jwk)) return undefined;
  const k = jwk as Record<string, unknown>;
  for (const m of PRIVATE_MEMBERS) if (k[m] !== undefined) return undefined;
  if (k.alg !== undefined && k.alg !== alg) return undefined;
  if (k.use !== undefined && k.use !== 'sig') return undefined;
  const want = expectedKey(alg);
  if (k.kty !== want.kty) return undefined;
  if (want.kty === 'EC') {
    if (k.crv !== want.crv || !b64member(k.x, 90) || !b64member(k.y, 90)) return undefined;
    return { crv: want.crv, kty: 'EC', x: k.x, y: k.y };
  }
  if (want.kty === 'OKP') {
    if (k.crv !== want.crv || !b64member(k.x, 90)) return undefined;
    return { crv: want.crv, kty: 'OKP', x: k.x };
  }
  // RSA: at least 2048 bits (342 base64url characters), at most 8192.
  if (!b64member(k.n, 1366) || k.n.length < 342 || !b64member(k.e, 12)) return undefined;
  return { e: k.e, kty: 'RSA', n: k.n };
}

/** RFC 7638 thumbprint of a jwk from publicJwk() (members already required-only and ordered). */
export function jwkThumbprint(jwk: JWK): string {
  return createHash('sha256').update(JSON.stringify(jwk)).digest('base64url');
}

/**
 * RFC 9449, §4.2 `ath`: base64url(SHA-256(ASCII bytes of the token)). The token reached here as a
 * token68 credential (ASCII only), whose UTF-8 bytes are its ASCII bytes: the one-shot hash() then
 * gives the same digest without a Hash object per request.
 */
export function accessTokenHash(accessToken: string): string {
  return hash('sha256', accessToken, 'base64url');
}

function sameString(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The one proof in the header value(s), or why there is not exactly one. */
function oneProof(proof: DpopRequest['proof'], maxBytes: number): string | DpopRefused {
  if (proof === undefined) return refuse('dpop_proof_missing');
  let value: string;
  if (typeof proof === 'string') value = proof;
  else if (proof.length === 0) return refuse('dpop_proof_missing');
  else if (proof.length > 1) return refuse('dpop_proof_multiple');
  else value = proof[0];
  if (typeof value !== 'string') return refuse('dpop_proof_malformed');
  if (value.length > maxBytes)
    return refuse('dpop_proof_too_large', `the DPoP proof is ${value.length} bytes; the limit is ${maxBytes}`);
  // Envoy joins repeated headers with ","; a compact JWS never contains one.
  if (value.includes(',')) return refuse('dpop_proof_multiple');
  value = value.trim();
  if (value === '') return refuse('dpop_proof_missing');
  if (!COMPACT_JWS.test(value)) return refuse('dpop_proof_malformed');
  return value;
}

function proofHeader(segment: string, algorithms: readonly string[]): ProofHeader | DpopRefused {
  const kept = proofHeaders.get(segment);
  if (kept !== undefined) return algorithms.includes(kept.alg) ? kept : refuse('dpop_alg_not_allowed');
  const head = readProofHeader(segment, algorithms);
  if (head.ok && segment.length <= MAX_KEPT_HEADER) proofHeaders.set(segment, head);
  return head;
}

function readProofHeader(segment: string, algorithms: readonly string[]): ProofHeader | DpopRefused {
  const header = jsonObject(segment);
  if (!header) return refuse('dpop_proof_malformed', 'the DPoP proof header is not a JSON object');
  if (!isDpopTyp(header.typ)) return refuse('dpop_typ_invalid');
  const alg = header.alg;
  if (typeof alg !== 'string' || !KNOWN_ALGS.has(alg) || !algorithms.includes(alg))
    return refuse('dpop_alg_not_allowed');
  if (header.crit !== undefined)
    return refuse('dpop_proof_malformed', 'the DPoP proof header has crit; no extension is understood');
  const jwk = publicJwk(header.jwk, alg);
  if (!jwk) return refuse('dpop_jwk_invalid');
  let key: KeyObject;
  try {
    key = createPublicKey({ key: jwk, format: 'jwk' });
  } catch {
    return refuse('dpop_jwk_invalid', 'the DPoP proof jwk is not a valid public key');
  }
  const verifier = jwsVerifier(alg, key);
  if (!verifier) return refuse('dpop_alg_not_allowed');
  return { ok: true, alg, jkt: jwkThumbprint(jwk), verifier };
}

// Proofs are verified in batches: every proof that reaches verifyDpopProof() in one event-loop
// turn waits for one setImmediate callback, which verifies them back to back and then resolves
// them all. A signature check runs markedly faster right after another one than after the rest
// of a Check (decoding, deciding, writing the answer), most likely because that work pushes
// OpenSSL's code and tables out of the CPU caches. The work is what the turn would have done
// anyway, in another order; a proof waits at most until the end of the current turn.
interface PendingProof {
  req: DpopRequest;
  policy: DpopPolicy;
  resolve(result: DpopResult): void;
}
let pending: PendingProof[] = [];

function verifyPending(): void {
  const batch = pending;
  pending = [];
  // A resolve only queues its Check's continuation, which runs after this loop.
  for (const p of batch) p.resolve(verifyGuarded(p.req, p.policy));
}

function verifyGuarded(req: DpopRequest, policy: DpopPolicy): DpopResult {
  try {
    return verify(req, policy);
  } catch {
    // Unreachable by design (every step guards itself); a proof must never become a 500.
    return refuse('dpop_proof_malformed', 'the DPoP proof could not be processed');
  }
}

/**
 * Verifies a DPoP proof against the request and the access token. Resolves to a result, never
 * rejects. The jti is not recorded here: call checkDpopReplay() with a verified result.
 */
export function verifyDpopProof(req: DpopRequest, policy: DpopPolicy): Promise<DpopResult> {
  return new Promise((resolve) => {
    if (pending.push({ req, policy, resolve }) === 1) setImmediate(verifyPending);
  });
}

// Synchronous: the signature check is node:crypto's synchronous verify and nothing else waits.
function verify(req: DpopRequest, policy: DpopPolicy): DpopResult {
  const nowMs = req.nowMs ?? Date.now();
  if (req.cnfJkt === undefined) return refuse('dpop_token_not_bound');

  const proof = oneProof(req.proof, policy.maxProofBytes ?? DEFAULT_MAX_PROOF_BYTES);
  if (typeof proof !== 'string') return proof;
  const dot = proof.indexOf('.');

  const head = proofHeader(proof.slice(0, dot), policy.algorithms);
  if (!head.ok) return head;
  const { jkt, verifier } = head;
  if (!jwsSignatureValid(proof, verifier.hash, verifier.input)) return refuse('dpop_signature_invalid');
  const payloadBytes = Buffer.from(proof.slice(dot + 1, proof.lastIndexOf('.')), 'base64url');

  let claims: Record<string, unknown>;
  try {
    const value: unknown = JSON.parse(payloadBytes.toString('utf8'));
    if (value === null || typeof value !== 'object' || Array.isArray(value))
      return refuse('dpop_proof_malformed', 'the DPoP proof payload is not a JSON object');
    claims = value as Record<string, unknown>;
  } catch {
    return refuse('dpop_proof_malformed', 'the DPoP proof payload is not JSON');
  }

  for (const name of ['jti', 'htm', 'htu', 'iat', 'ath'] as const) {
    if (claims[name] === undefined) return refuse('dpop_claim_missing', `the DPoP proof has no ${name} claim`);
  }
  const { jti, htm, htu, iat, ath } = claims;
  if (typeof jti !== 'string' || jti.length === 0 || jti.length > MAX_JTI_LENGTH)
    return refuse('dpop_claim_invalid', `the DPoP proof jti is not a string of 1 to ${MAX_JTI_LENGTH} characters`);
  if (typeof htm !== 'string') return refuse('dpop_claim_invalid', 'the DPoP proof htm is not a string');
  if (typeof htu !== 'string') return refuse('dpop_claim_invalid', 'the DPoP proof htu is not a string');
  if (typeof iat !== 'number' || !Number.isFinite(iat))
    return refuse('dpop_claim_invalid', 'the DPoP proof iat is not a number');
  if (typeof ath !== 'string') return refuse('dpop_claim_invalid', 'the DPoP proof ath is not a string');

  // Methods are case-sensitive (RFC 9110, §9.1).
  if (htm !== req.method) return refuse('dpop_htm_mismatch');
  if (req.htu === undefined)
    return refuse(
      'dpop_htu_mismatch',
      'the request URI could not be rebuilt (scheme, authority or path not valid); see credentials.dpop.external_origin',
    );
  // req.htu is already normalized and normalization is idempotent, so a client that sent the
  // normalized form (most do) matches without parsing its htu as a URL again.
  if (htu !== req.htu && normalizeHtu(htu) !== req.htu) return refuse('dpop_htu_mismatch');

  const nowS = nowMs / 1000;
  const age = nowS - iat;
  if (age > policy.maxAgeSeconds + policy.clockSkewSeconds) {
    return refuse(
      'dpop_iat_invalid',
      `the DPoP proof is ${Math.round(age)} s old; max_age_seconds is ${policy.maxAgeSeconds} (+ ${policy.clockSkewSeconds} s skew)`,
    );
  }
  if (-age > policy.clockSkewSeconds) {
    return refuse(
      'dpop_iat_invalid',
      `the DPoP proof iat is ${Math.round(-age)} s in the future; the clock skew allowed is ${policy.clockSkewSeconds} s`,
    );
  }

  let renewNonce = false;
  if (policy.nonces) {
    if (claims.nonce === undefined) return refuse('dpop_nonce_required');
    const checked = policy.nonces.check(claims.nonce, nowMs);
    if (checked === 'invalid') return refuse('dpop_nonce_invalid');
    renewNonce = checked === 'valid-renew';
  }

  if (!sameString(ath, accessTokenHash(req.accessToken))) return refuse('dpop_ath_mismatch');
  if (!sameString(jkt, req.cnfJkt)) return refuse('dpop_key_mismatch');

  return {
    ok: true,
    jkt,
    jti,
    iat,
    replay: {
      key: replayKey(jkt, jti),
      expiresAtMs: Math.ceil((iat + policy.maxAgeSeconds + policy.clockSkewSeconds) * 1000),
    },
    renewNonce,
  };
}

/**
 * Records a verified proof's jti: undefined the first time, `dpop_replayed` after. Throws
 * DependencyUnavailableError when the shared cache is down and configured to deny (503).
 */
export async function checkDpopReplay(cache: ReplayCache, verified: DpopVerified): Promise<DpopRefused | undefined> {
  return (await cache.seen(verified.replay.key, verified.replay.expiresAtMs)) ? refuse('dpop_replayed') : undefined;
}

/**
 * The `WWW-Authenticate` challenge for DPoP (RFC 9449, §7.1): `DPoP algs="ES256 EdDSA"`, plus
 * `error` and `error_description` when a DPoP credential was sent and failed.
 */
export function dpopChallenge(
  algorithms: readonly string[],
  refusal?: { error?: ChallengeError; description?: string },
  realm?: string,
): string {
  const params: string[] = [];
  if (realm !== undefined) params.push(`realm="${quoted(realm)}"`);
  if (refusal?.error) params.push(`error="${refusal.error}"`);
  if (refusal?.error && refusal.description) params.push(`error_description="${quoted(refusal.description)}"`);
  params.push(`algs="${algorithms.filter((a) => KNOWN_ALGS.has(a)).join(' ')}"`);
  return `DPoP ${params.join(', ')}`;
}

/** A quoted-string body: printable ASCII, `"` and `\` escaped. */
function quoted(s: string): string {
  return s.replace(/[^\x20-\x7e]/g, '').replace(/["\\]/g, '\\$&');
}
