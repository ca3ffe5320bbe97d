// One issuer's usable verification keys, built from a JWKS document.
// A key is used only for its own issuer (each issuer has its own KeySet) and only with one
// algorithm that is in the issuer's allow-list and matches the key's type: RSA -> RS*/PS*, EC P-256
// -> ES256, P-384 -> ES384, P-521 -> ES512, OKP Ed25519 -> EdDSA. The key's `alg` when it has one;
// without, the first of the issuer's algorithms that fits its type. Symmetric (`oct`) keys are never imported,
// so no token can be verified with HMAC, least of all with a public key as the secret.
import { importJWK, type JWK } from 'jose';

export interface VerificationKey {
  kid?: string;
  alg: string;
  key: CryptoKey;
}

/** Keys that cannot be used, with why: logged once per load so operators can see a bad JWKS. */
export interface SkippedKey {
  kid?: string;
  why: string;
}

const RSA_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512'];
const EC_ALG_BY_CURVE: Record<string, string> = { 'P-256': 'ES256', 'P-384': 'ES384', 'P-521': 'ES512' };
const MIN_RSA_BITS = 2048;

function algsForKey(jwk: JWK): string[] | string {
  switch (jwk.kty) {
    case 'RSA': {
      if (typeof jwk.n !== 'string' || typeof jwk.e !== 'string') return 'RSA key without n/e';
      const bits = Buffer.from(jwk.n, 'base64url').length * 8;
      if (bits < MIN_RSA_BITS) return `RSA key of ${bits} bits (minimum ${MIN_RSA_BITS})`;
      return RSA_ALGS;
    }
    case 'EC': {
      const alg = EC_ALG_BY_CURVE[jwk.crv ?? ''];
      return alg ? [alg] : `unsupported EC curve ${String(jwk.crv)}`;
    }
    case 'OKP':
      return jwk.crv === 'Ed25519' ? ['EdDSA'] : `unsupported OKP curve ${String(jwk.crv)}`;
    case 'oct':
      return 'symmetric (oct) keys are never used';
    default:
      return `unsupported key type ${String(jwk.kty)}`;
  }
}

/** Stable identity of a key's public material, so unchanged keys keep their objects across refreshes. */
function fingerprint(jwk: JWK, alg: string): string {
  return [jwk.kid ?? '', alg, jwk.kty, jwk.crv ?? '', jwk.n ?? '', jwk.e ?? '', jwk.x ?? '', jwk.y ?? ''].join('|');
}

export class KeySet {
  private readonly byKid = new Map<string, Map<string, VerificationKey>>();
  private readonly withoutKid = new Map<string, VerificationKey[]>();
  /** Every key object in this set: a verified-token cache entry stays valid only while its key is here. */
  readonly live = new Set<VerificationKey>();

  private constructor(
    readonly skipped: SkippedKey[],
    private readonly byFingerprint: Map<string, VerificationKey>,
  ) {}

  get size(): number {
    return this.live.size;
  }

  get kids(): string[] {
    return [...this.byKid.keys()];
  }

  /** The key for `kid` and `alg`: 'found', 'no_alg' (kid known, not for this alg) or 'unknown_kid'. */
  lookup(
    kid: string | undefined,
    alg: string,
  ): { status: 'found'; key: VerificationKey } | { status: 'no_alg' | 'unknown_kid' | 'ambiguous' } {
    if (kid === undefined) {
      // No kid: usable only when exactly one key could have signed it.
      const list = this.withoutKid.get(alg) ?? [];
      const all = [...list, ...[...this.byKid.values()].flatMap((m) => (m.get(alg) ? [m.get(alg)!] : []))];
      if (all.length === 1) return { status: 'found', key: all[0] };
      return { status: all.length === 0 ? 'no_alg' : 'ambiguous' };
    }
    const forKid = this.byKid.get(kid);
    if (!forKid) return { status: 'unknown_kid' };
    const key = forKid.get(alg);
    return key ? { status: 'found', key } : { status: 'no_alg' };
  }

  /**
   * Builds a KeySet from a JWKS document. `previous` lets unchanged keys keep their identity.
   * Throws when the document is not a JWKS; an empty result is the caller's decision.
   */
  static async fromJwks(doc: unknown, allowedAlgs: ReadonlySet<string>, previous?: KeySet): Promise<KeySet> {
    if (typeof doc !== 'object' || doc === null || !Array.isArray((doc as { keys?: unknown }).keys)) {
      throw new Error('not a JWKS document (expected an object with a "keys" array)');
    }
    const skipped: SkippedKey[] = [];
    const byFingerprint = new Map<string, VerificationKey>();
    const set = new KeySet(skipped, byFingerprint);
    for (const raw of (doc as { keys: unknown[] }).keys) {
      if (typeof raw !== 'object' || raw === null) {
        skipped.push({ why: 'not a JSON object' });
        continue;
      }
      const jwk = raw as JWK & { use?: unknown; key_ops?: unknown };
      const kid = typeof jwk.kid === 'string' && jwk.kid !== '' ? jwk.kid : undefined;
      if (jwk.use !== undefined && jwk.use !== 'sig') {
        skipped.push({ kid, why: `use is "${String(jwk.use)}", not "sig"` });
        continue;
      }
      if (jwk.key_ops !== undefined && !(Array.isArray(jwk.key_ops) && jwk.key_ops.includes('verify'))) {
        skipped.push({ kid, why: 'key_ops does not include "verify"' });
        continue;
      }
      if (jwk.d !== undefined) {
        // A private key published in a JWKS is a misconfiguration at the issuer; use nothing of it.
        skipped.push({ kid, why: 'contains private key material' });
        continue;
      }
      const fits = algsForKey(jwk);
      if (typeof fits === 'string') {
        skipped.push({ kid, why: fits });
        continue;
      }
      // One key, one algorithm (RFC 8725 §3.1): a key verifies only its `alg`, and a key without
      // `alg` only the first algorithm of its type in the issuer's `algorithms`, never every one
      // that fits (an RSA key would otherwise verify RS256, RS384, PS256… alike).
      const candidates = [...allowedAlgs].filter((a) => fits.includes(a));
      const algs = jwk.alg !== undefined ? candidates.filter((a) => a === jwk.alg) : candidates.slice(0, 1);
      if (algs.length === 0) {
        skipped.push({
          kid,
          why: `no allowed algorithm fits (key alg ${String(jwk.alg ?? 'unset')}, allowed ${[...allowedAlgs].join(', ')})`,
        });
        continue;
      }
      if (kid !== undefined && set.byKid.has(kid)) {
        skipped.push({ kid, why: 'duplicate kid (the first one is used)' });
        continue;
      }
      const forKid = new Map<string, VerificationKey>();
      for (const alg of algs) {
        const fp = fingerprint(jwk, alg);
        let vk = previous?.byFingerprint.get(fp);
        if (!vk) {
          try {
            // Only the public parameters: nothing else from the document reaches the importer.
            const pub = Object.fromEntries(
              (['kty', 'n', 'e', 'crv', 'x', 'y'] as const).filter((k) => jwk[k] !== undefined).map((k) => [k, jwk[k]]),
            ) as JWK;
            const key = (await importJWK(pub, alg)) as CryptoKey;
            vk = { kid, alg, key };
          } catch (e) {
            skipped.push({ kid, why: `cannot import for ${alg}: ${(e as Error).message}` });
            continue;
          }
        }
        byFingerprint.set(fp, vk);
        set.live.add(vk);
        if (kid !== undefined) forKid.set(alg, vk);
        else set.withoutKid.set(alg, [...(set.withoutKid.get(alg) ?? []), vk]);
      }
      if (kid !== undefined && forKid.size) set.byKid.set(kid, forKid);
    }
    return set;
  }
}
