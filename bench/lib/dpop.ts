// DPoP scenarios (RFC 9449): one access token bound to the bench client's key (cnf.jkt), cached
// after its first use, and a never-seen proof on every request, signed here with node:crypto. They
// run on Portcullis instances of their own (the main one's config has no credentials.dpop, so the
// other rows measure what they always did): one with the replay cache in memory, one sharing it
// through a redis-server.
import { createHash, createPrivateKey, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { framedCheckRequest } from './payloads.ts';
import { AUDIENCE, ISSUER, type SigningKey } from './tokens.ts';

const b64 = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');

/** The proof algorithms a bench client signs with: P-256 ECDSA, or RSA-2048 PKCS#1 v1.5. */
export type DpopProofAlg = 'ES256' | 'RS256';

export interface DpopClient {
  alg: DpopProofAlg;
  privateKey: KeyObject;
  /** The public JWK with RFC 7638's required members only, in their order. */
  jwk: Record<string, string>;
  /** A JWT bound to the key (cnf.jkt), signed by the bench issuer's ES256 key. */
  token: string;
}

export function dpopClient(issuerKey: SigningKey, alg: DpopProofAlg = 'ES256'): DpopClient {
  const { privateKey, publicKey } =
    alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const e = publicKey.export({ format: 'jwk' });
  const jwk: Record<string, string> =
    alg === 'ES256' ? { crv: e.crv!, kty: e.kty!, x: e.x!, y: e.y! } : { e: e.e!, kty: e.kty!, n: e.n! };
  const jkt = createHash('sha256').update(JSON.stringify(jwk)).digest('base64url');
  const now = Math.floor(Date.now() / 1000);
  const input = `${b64({ alg: 'ES256', typ: 'at+jwt', kid: issuerKey.kid })}.${b64({
    iss: ISSUER,
    aud: AUDIENCE,
    sub: 'user-dpop',
    client_id: 'bench-dpop',
    scope: 'orders:read',
    jti: `dpop-bound-${alg}`,
    iat: now,
    exp: now + 3600,
    cnf: { jkt },
  })}`;
  const sig = sign('sha256', Buffer.from(input), {
    key: createPrivateKey(issuerKey.privatePem),
    dsaEncoding: 'ieee-p1363',
  });
  return { alg, privateKey, jwk, token: `${input}.${sig.toString('base64url')}` };
}

/** `count` requests, each with its own never-seen proof for GET `path` on https://api.example.com. */
export function dpopFrames(client: DpopClient, path: string, count: number): Buffer[] {
  const htu = `https://api.example.com${path.split('?')[0]}`;
  const ath = createHash('sha256').update(client.token).digest('base64url');
  const header = b64({ typ: 'dpop+jwt', alg: client.alg, jwk: client.jwk });
  const key =
    client.alg === 'ES256' ? { key: client.privateKey, dsaEncoding: 'ieee-p1363' as const } : client.privateKey;
  const iat = Math.floor(Date.now() / 1000);
  const run = randomBytes(6).toString('base64url');
  const frames: Buffer[] = [];
  for (let i = 0; i < count; i++) {
    const input = `${header}.${b64({ jti: `${run}-${i}`, htm: 'GET', htu, iat, ath })}`;
    const sig = sign('sha256', Buffer.from(input), key);
    frames.push(
      framedCheckRequest(
        { path, headers: { authorization: `DPoP ${client.token}`, dpop: `${input}.${sig.toString('base64url')}` } },
        i,
      ),
    );
  }
  return frames;
}

/**
 * The main config with other listener ports, `credentials.dpop` (proofs may be an hour old: a pool
 * is signed before a run), and a `redis` section when a URL is given.
 */
export function dpopConfig(
  mainConfig: string,
  from: { grpc: number; http: number },
  to: { grpc: number; http: number },
  redisUrl?: string,
): string {
  return (
    mainConfig
      .replace(`127.0.0.1:${from.grpc}`, `127.0.0.1:${to.grpc}`)
      .replace(`127.0.0.1:${from.http}`, `127.0.0.1:${to.http}`)
      .replace(
        '\ncredentials:\n',
        `\ncredentials:\n  dpop: { max_age_seconds: 3600, algorithms: [ES256, RS256], replay_cache: { max_entries: 2000000 } }\n`,
      ) +
    // A saturated server answers late; the bench measures throughput, not command timeouts (which
    // would turn proofs into 503s and out of the expected share).
    (redisUrl ? `redis: { url: "${redisUrl}", key_prefix: "bench:", command_timeout_ms: 1000 }\n` : '')
  );
}
