// Phantom-token signing keys: loaded from PEM files with key ids (newest first), or, with none
// configured, one generated per process (development only: other nodes and restarts do not
// share it). The JWKS publishes every key's public part, so a key can be staged before it signs
// and kept after it stops, and rotation never fails a request.
import { readFile } from 'node:fs/promises';
import { createPublicKey, randomBytes } from 'node:crypto';
import { exportJWK, generateKeyPair, importPKCS8, type CryptoKey, type JWK } from 'jose';

export type PhantomAlg = 'ES256' | 'RS256' | 'EdDSA';

export interface SigningKey {
  kid: string;
  alg: PhantomAlg;
  privateKey: CryptoKey;
  publicJwk: JWK;
  publishOnly: boolean;
}

export interface KeyFileConfig {
  kid: string;
  private_key_file: string;
  algorithm?: PhantomAlg;
  publish_only: boolean;
}

async function publicJwkOf(pem: string, kid: string, alg: PhantomAlg): Promise<JWK> {
  // The public key is derived from the private one: no second file to keep in step.
  const pub = createPublicKey(pem);
  const jwk = await exportJWK(pub);
  return { ...jwk, kid, alg, use: 'sig' };
}

export async function loadKeyFiles(
  keys: readonly KeyFileConfig[],
  defaultAlg: PhantomAlg,
  resolvePath: (p: string) => string,
  where: string,
): Promise<SigningKey[]> {
  const out: SigningKey[] = [];
  for (const [i, k] of keys.entries()) {
    const alg = k.algorithm ?? defaultAlg;
    const file = resolvePath(k.private_key_file);
    let pem: string;
    try {
      pem = await readFile(file, 'utf8');
    } catch (e) {
      throw new Error(
        `${where}.keys[${i}].private_key_file: cannot read ${file}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`,
        { cause: e },
      );
    }
    try {
      const privateKey = await importPKCS8(pem, alg);
      out.push({
        kid: k.kid,
        alg,
        privateKey,
        publicJwk: await publicJwkOf(pem, k.kid, alg),
        publishOnly: k.publish_only,
      });
    } catch (e) {
      throw new Error(
        `${where}.keys[${i}] (kid "${k.kid}"): ${file} is not a PKCS#8 PEM private key for ${alg} (${(e as Error).message}). ` +
          `Create one with: openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ${k.kid}.pem`,
        { cause: e },
      );
    }
  }
  return out;
}

// One generated key per algorithm per process, reused across config reloads so phantom tokens
// already issued keep verifying.
const generated = new Map<PhantomAlg, Promise<SigningKey>>();

export function generatedKey(alg: PhantomAlg): Promise<SigningKey> {
  let p = generated.get(alg);
  if (!p) {
    p = (async () => {
      const { privateKey, publicKey } = await generateKeyPair(alg, {
        extractable: false,
        ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}),
      });
      const kid = `generated-${randomBytes(6).toString('hex')}`;
      const publicJwk = { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } as JWK;
      return { kid, alg, privateKey, publicJwk, publishOnly: false };
    })();
    generated.set(alg, p);
  }
  return p;
}
