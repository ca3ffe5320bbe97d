// credentials.introspection.phantom_token -> the `phantomToken` dependency and the JWKS handler.
import type { ServerResponse } from 'node:http';
import type { Identity } from '../../core/types.ts';
import type { ComponentContext, OpsHandler } from '../../plumbing/component.ts';
import type { IntrospectionConfig } from '../../policy/schema.ts';
import { phantomTokensIssued } from '../introspection/metrics.ts';
import { generatedKey, loadKeyFiles, type SigningKey } from './keys.ts';
import { PhantomTokenSigner } from './signer.ts';

export const JWKS_PATH = '/.well-known/jwks.json';

type PhantomConfig = NonNullable<IntrospectionConfig['phantom_token']>;

export interface PhantomComponent {
  /** Loads or generates the keys; the signer is unusable (and not ready) before. */
  start(): Promise<void>;
  ready(): boolean;
  tokenFor(identity: Identity): Promise<string | undefined>;
  jwksHandler: OpsHandler;
  /** The key phantom tokens are signed with, once started (signed protected-resource metadata). */
  signingKey(): SigningKey | undefined;
}

export function createPhantom(cfg: PhantomConfig, opts: ComponentContext): PhantomComponent {
  const where = 'credentials.introspection.phantom_token';
  const issued = phantomTokensIssued(opts.registry);
  let signer: PhantomTokenSigner | undefined;
  let jwksBody = '';

  const notReady = (res: ServerResponse) => {
    res.writeHead(503, { 'content-type': 'application/json', 'cache-control': 'no-store', 'retry-after': '1' });
    res.end(JSON.stringify({ error: 'temporarily_unavailable' }));
  };

  return {
    async start() {
      let keys: SigningKey[];
      if (cfg.keys?.length) {
        keys = await loadKeyFiles(cfg.keys, cfg.algorithm, opts.resolvePath, where);
      } else {
        keys = [await generatedKey(cfg.algorithm)];
        opts.log.warn(
          { kid: keys[0].kid, algorithm: cfg.algorithm },
          `${where}.keys is not set: signing phantom tokens with a key generated at start. Fine for a single development node; ` +
            'in production configure keys so every node signs with the same key and restarts do not invalidate tokens',
        );
      }
      signer = new PhantomTokenSigner(keys, {
        issuer: cfg.issuer,
        audience: cfg.audience,
        ttlSeconds: cfg.ttl_seconds,
        forApiKeys: cfg.for_api_keys,
        now: opts.now,
        onIssued: (credential) => issued.inc({ credential }),
      });
      jwksBody = JSON.stringify(signer.jwks());
      opts.log.info(
        { signing_kid: signer.kid, published_kids: keys.map((k) => k.kid), issuer: cfg.issuer, audience: cfg.audience },
        'phantom tokens enabled',
      );
    },
    ready: () => signer !== undefined,
    signingKey: () => signer?.signingKey,
    async tokenFor(identity) {
      // decide() turns a throw into a 503: never an allow without the promised phantom token.
      if (!signer) throw new Error('phantom token signer not started');
      return signer.tokenFor(identity);
    },
    jwksHandler(req, res) {
      if (!signer) return notReady(res);
      if (req.method !== 'GET' && req.method !== 'HEAD') {
        res.writeHead(405, { allow: 'GET, HEAD' });
        return void res.end();
      }
      // Short max-age: upstreams pick up a staged key soon after a reload.
      res.writeHead(200, { 'content-type': 'application/jwk-set+json', 'cache-control': 'public, max-age=60' });
      res.end(req.method === 'HEAD' ? undefined : jwksBody);
    },
  };
}
