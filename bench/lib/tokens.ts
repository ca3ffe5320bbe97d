// The bench's own token issuer: RS256 and ES256 keys it generates, their JWKS file, and RFC 9068
// access tokens signed with node:crypto (fast enough to pre-sign tens of thousands).
import { createPrivateKey, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { tsWorker } from './ts-worker.ts';

export const ISSUER = 'https://idp.bench.example';
export const AUDIENCE = 'https://api.example.com';

export type Alg = 'RS256' | 'ES256';

export interface SigningKey {
  alg: Alg;
  kid: string;
  privatePem: string;
  publicJwk: Record<string, unknown>;
}

export function generateSigningKey(alg: Alg): SigningKey {
  const { privateKey, publicKey } =
    alg === 'RS256'
      ? generateKeyPairSync('rsa', { modulusLength: 2048 })
      : generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const kid = `bench-${alg.toLowerCase()}`;
  return {
    alg,
    kid,
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }) as string,
    publicJwk: { ...publicKey.export({ format: 'jwk' }), kid, alg, use: 'sig' },
  };
}

export function jwks(keys: SigningKey[]): string {
  return JSON.stringify({ keys: keys.map((k) => k.publicJwk) }, null, 2);
}

const b64 = (s: string) => Buffer.from(s).toString('base64url');

export interface TokenClaims {
  sub: string;
  client_id: string;
  scope: string;
  /** Makes each token distinct. */
  jti: string;
  lifetimeSeconds?: number;
  /** More claims for the payload (the policy scenarios' tenant and roles). */
  extra?: Record<string, unknown>;
}

export function signToken(
  key: SigningKey,
  c: TokenClaims,
  privateKey: KeyObject = createPrivateKey(key.privatePem),
  nowSec = Math.floor(Date.now() / 1000),
): string {
  const header = b64(JSON.stringify({ alg: key.alg, typ: 'at+jwt', kid: key.kid }));
  const payload = b64(
    JSON.stringify({
      iss: ISSUER,
      aud: AUDIENCE,
      sub: c.sub,
      client_id: c.client_id,
      scope: c.scope,
      jti: c.jti,
      iat: nowSec,
      exp: nowSec + (c.lifetimeSeconds ?? 3600),
      ...c.extra,
    }),
  );
  const input = `${header}.${payload}`;
  const sig =
    key.alg === 'RS256'
      ? sign('sha256', Buffer.from(input), privateKey)
      : sign('sha256', Buffer.from(input), { key: privateKey, dsaEncoding: 'ieee-p1363' });
  return `${input}.${sig.toString('base64url')}`;
}

/** `count` distinct tokens (jti = prefix + index), signed in `threads` worker threads. */
export async function signPool(key: SigningKey, count: number, prefix: string, threads = 2): Promise<string[]> {
  const per = Math.ceil(count / threads);
  const parts = await Promise.all(
    Array.from(
      { length: threads },
      (_, i) =>
        new Promise<string[]>((resolve, reject) => {
          const n = Math.max(0, Math.min(per, count - i * per));
          const w = tsWorker(new URL('./sign-worker.ts', import.meta.url), { key, from: i * per, count: n, prefix });
          w.once('message', (m: string[]) => {
            resolve(m);
            void w.terminate();
          });
          w.once('error', reject);
        }),
    ),
  );
  return parts.flat();
}
