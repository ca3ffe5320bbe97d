// Mints the phantom token: the JWT an upstream sees in place of the client's opaque token (or,
// optionally, API key). Carries sub, client_id, scope, exp = min(original exp, now + ttl), iss and
// aud from config. A signed token is reused for the same cached identity while it has more than
// half its lifetime left, so repeat requests do not pay for a signature each.
import { randomUUID } from 'node:crypto';
import { SignJWT } from 'jose';
import type { Identity } from '../../core/types.ts';
import { Memo } from '../../plumbing/memo.ts';
import type { SigningKey } from './keys.ts';

export interface PhantomSignerOptions {
  issuer: string;
  audience: string;
  ttlSeconds: number;
  forApiKeys: boolean;
  now(): number;
  onIssued?(credential: string): void;
}

export class PhantomTokenSigner {
  private readonly signing: SigningKey;
  // Identities from the introspection cache are shared objects: their phantom token is too.
  private readonly reuse = new Memo<Identity, { jwt: string; exp: number; renewAt: number }>(4096);

  constructor(
    readonly keys: readonly SigningKey[],
    private readonly o: PhantomSignerOptions,
  ) {
    const k = keys.find((x) => !x.publishOnly);
    if (!k) throw new Error('phantom_token: no signing key');
    this.signing = k;
  }

  get kid(): string {
    return this.signing.kid;
  }

  get signingKey(): SigningKey {
    return this.signing;
  }

  /** undefined: this identity keeps no phantom token (JWTs pass as they are; API keys unless for_api_keys). */
  async tokenFor(identity: Identity): Promise<string | undefined> {
    if (identity.method === 'jwt') return undefined;
    if (identity.method === 'api-key' && !this.o.forApiKeys) return undefined;
    const nowMs = this.o.now();
    const now = Math.floor(nowMs / 1000);
    const prior = this.reuse.get(identity);
    if (prior && prior.renewAt > now && prior.exp > now) return prior.jwt;

    const exp = Math.min(identity.expiresAt ?? Infinity, now + this.o.ttlSeconds);
    // An identity at (or past) its expiry gets no token rather than one that is already dead.
    if (exp <= now) throw new Error('phantom token would be expired');
    const sub = identity.subject ?? identity.clientId ?? identity.keyId;
    const claims: Record<string, unknown> = {
      scope: identity.scopes.join(' '),
      auth_method: identity.method,
    };
    if (identity.clientId !== undefined) claims.client_id = identity.clientId;
    const jwt = new SignJWT(claims)
      .setProtectedHeader({ alg: this.signing.alg, kid: this.signing.kid, typ: 'at+jwt' })
      .setIssuer(this.o.issuer)
      .setAudience(this.o.audience)
      .setIssuedAt(now)
      .setExpirationTime(exp)
      .setJti(randomUUID());
    // RFC 9068: sub is required; for a client acting for itself it names the client.
    if (sub !== undefined) jwt.setSubject(sub);
    const signed = await jwt.sign(this.signing.privateKey);
    this.reuse.set(identity, { jwt: signed, exp, renewAt: now + Math.max(1, Math.floor((exp - now) / 2)) });
    this.o.onIssued?.(identity.method);
    return signed;
  }

  /** The public JWKS: every configured key (signing, staged, retired). */
  jwks(): { keys: object[] } {
    return { keys: this.keys.map((k) => k.publicJwk) };
  }
}
