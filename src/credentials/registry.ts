// Every credential kind's verifier, registered by kind: the one place a kind is wired in. The
// runtime asks each factory for its verifier (src/runtime/components.ts) and hands the verifiers
// to decide(); a factory returns undefined when its config section is absent. The table is typed
// over every CredentialKind, so a kind added to CREDENTIAL_KINDS (src/core/types.ts) does not
// compile until it is registered here (CONTRIBUTING.md, "Adding a credential kind").
import type { CredentialVerifier } from '../core/deps.ts';
import type { CredentialKind } from '../core/types.ts';
import type { ComponentContext, Lifecycle } from '../plumbing/component.ts';
import type { Config } from '../policy/schema.ts';
import type { KeyStore } from '../stores/keystore.ts';
import type { RedisConnection } from '../stores/redis/connection.ts';
import { ApiKeyVerifier } from './api-key/verifier.ts';
import { createIntrospection } from './introspection/component.ts';
import { createJwtComponent } from './jwt/index.ts';
import { loadTrustBundle, MtlsVerifier } from './mtls/verifier.ts';
import { certificateSource } from './pop/component.ts';

/** What a verifier is built from: the service, the whole config, and the generation's shared stores. */
export interface VerifierContext extends ComponentContext {
  config: Config;
  /** The generation's Redis connection, when the config has a redis section. */
  redis?: RedisConnection;
  /** The generation's key store, when credentials.api_key is configured. */
  keyStore?: KeyStore;
  /** Caches that may outlive a config reload are kept per scope (the config file's folder). */
  cacheScope: string;
}

export interface VerifierComponent extends Lifecycle {
  verifier: CredentialVerifier;
}

export type VerifierFactory = (ctx: VerifierContext) => VerifierComponent | undefined;

export const VERIFIER_FACTORIES: { readonly [K in CredentialKind]: VerifierFactory } = {
  'api-key': (ctx) => {
    const apiKey = ctx.config.credentials.api_key;
    if (!apiKey || !ctx.keyStore) return undefined;
    return { verifier: new ApiKeyVerifier(apiKey.prefix, ctx.keyStore, ctx.now) };
  },

  jwt: (ctx) => {
    const issuers = ctx.config.credentials.jwt;
    if (!issuers?.length) return undefined;
    return createJwtComponent({ ...ctx, issuers, cache: ctx.config.credentials.jwt_cache });
  },

  oauth2: (ctx) => {
    const introspection = ctx.config.credentials.introspection;
    if (!introspection) return undefined;
    return createIntrospection(introspection, { ...ctx, log: ctx.log.child({ component: 'introspection' }) });
  },

  mtls: (ctx) => {
    const mtls = ctx.config.credentials.mtls;
    if (!mtls) return undefined;
    const trust = mtls.ca_file ? loadTrustBundle(ctx.resolvePath(mtls.ca_file)) : undefined;
    return {
      verifier: new MtlsVerifier(mtls, certificateSource(ctx.config.credentials.client_certificate), trust, ctx.now),
    };
  },
};
