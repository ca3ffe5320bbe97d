// decide()'s dependencies for tests that hand in their own verifiers: a key store (verified by the
// real api-key verifier) and plain functions for JWTs and opaque tokens.
import type { DecideDeps, RateLimiter } from '../../src/core/deps.ts';
import type { Identity } from '../../src/core/types.ts';
import { ApiKeyVerifier } from '../../src/credentials/api-key/verifier.ts';
import type { KeyStore } from '../../src/stores/keystore.ts';

export interface TestDeps {
  now(): number;
  keyStore?: KeyStore;
  /** The config's credentials.api_key.prefix. */
  apiKeyPrefix?: string;
  verifyJwt?(token: string): Promise<Identity>;
  introspect?(token: string): Promise<Identity>;
  rateLimiter?: RateLimiter;
  phantomToken?(identity: Identity, route: string): Promise<string | undefined>;
}

export function decideDeps(t: TestDeps): DecideDeps {
  const { verifyJwt, introspect } = t;
  return {
    now: t.now,
    verifiers: {
      ...(t.keyStore ? { 'api-key': new ApiKeyVerifier(t.apiKeyPrefix ?? 'pcl', t.keyStore, () => t.now()) } : {}),
      ...(verifyJwt ? { jwt: { verify: (token: string) => verifyJwt(token) } } : {}),
      ...(introspect ? { oauth2: { verify: (token: string) => introspect(token) } } : {}),
    },
    rateLimiter: t.rateLimiter,
    phantomToken: t.phantomToken,
  };
}
