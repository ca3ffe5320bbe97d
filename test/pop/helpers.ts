// Shared by the proof-of-possession tests: DPoP proofs made as a real client makes them (panva's
// `dpop` package) and hostile ones crafted with jose, and access tokens bound with `cnf`.
import { createHash, randomBytes, randomUUID } from 'node:crypto';
import { calculateJwkThumbprint, CompactSign, exportJWK, generateKeyPair, type JWK } from 'jose';
import { nowSeconds, signRaw, type TestKey } from '../jwt/helpers.ts';

export type KeyPair = Awaited<ReturnType<typeof generateKeyPair>>;

export interface ProofKey {
  pair: KeyPair;
  jwk: JWK;
  jkt: string;
}

export async function proofKey(alg: 'ES256' | 'RS256' | 'EdDSA' = 'ES256'): Promise<ProofKey> {
  const pair = await generateKeyPair(alg, { extractable: true });
  const jwk = await exportJWK(pair.publicKey);
  return { pair, jwk, jkt: await calculateJwkThumbprint(jwk) };
}

export const ath = (token: string) => createHash('sha256').update(token, 'ascii').digest('base64url');

/** A proof signed with jose: any header member and claim can be replaced or left out. */
export async function craftProof(
  key: ProofKey,
  claims: { htm: string; htu: string; token: string } & Record<string, unknown>,
  opts: { header?: Record<string, unknown>; omit?: string[]; signWith?: KeyPair } = {},
): Promise<string> {
  const { token, ...rest } = claims;
  const payload: Record<string, unknown> = {
    jti: randomBytes(16).toString('base64url'),
    iat: nowSeconds(),
    ath: ath(token),
    ...rest,
  };
  for (const k of opts.omit ?? []) delete payload[k];
  const alg =
    (opts.header?.alg as string | undefined) ??
    (key.jwk.kty === 'EC' ? 'ES256' : key.jwk.kty === 'OKP' ? 'EdDSA' : 'RS256');
  return new CompactSign(new TextEncoder().encode(JSON.stringify(payload)))
    .setProtectedHeader({ typ: 'dpop+jwt', alg, jwk: key.jwk, ...opts.header })
    .sign((opts.signWith ?? key.pair).privateKey);
}

/** An unsigned proof (`alg: none`) or one with any header, signature from an HMAC key. */
export function unsignedProof(header: Record<string, unknown>, claims: Record<string, unknown>, sig = ''): string {
  const b = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${b(header)}.${b(claims)}.${sig}`;
}

/** An RFC 9068 access token from the test issuer, with `cnf` when given. */
export function accessToken(issuer: { iss: string; aud: string; key: TestKey }, over: Record<string, unknown> = {}) {
  const now = nowSeconds();
  return signRaw(
    { alg: 'ES256', typ: 'at+jwt', kid: issuer.key.kid },
    {
      iss: issuer.iss,
      aud: issuer.aud,
      sub: 'alice',
      client_id: 'web',
      scope: 'orders:read',
      iat: now,
      exp: now + 300,
      jti: randomUUID(),
      ...over,
    },
    issuer.key.privateKey,
    'ES256',
  );
}

/** The body's `error` and the reason from the dynamic metadata. */
export function outcome(out: {
  status: number;
  body?: string;
  clientHeaders: Record<string, string>;
  upstreamHeaders: Record<string, string>;
  response: { dynamic_metadata?: { fields?: Record<string, { stringValue?: string }> } };
}) {
  const fields = out.response.dynamic_metadata?.fields ?? {};
  return {
    status: out.status,
    reason: fields.reason?.stringValue,
    bound: fields.bound?.stringValue,
    error: out.body ? (JSON.parse(out.body) as { error: string }).error : undefined,
    challenge: out.clientHeaders['www-authenticate'],
    nonce: out.clientHeaders['dpop-nonce'],
    upstream: out.upstreamHeaders,
  };
}
