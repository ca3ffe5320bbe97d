// Key material this repository publishes so that its walkthroughs work: the README's demo API key,
// the compose walkthrough's key, the example config's JWT signing key. Anyone with a copy of the
// repository can use them, so a server that accepts one says so at start and on every reload,
// under whatever name or path the config gives it.
import { readFileSync } from 'node:fs';
import { calculateJwkThumbprint, type JWK } from 'jose';
import type { Logger } from 'pino';
import type { Config } from '../policy/schema.ts';
import { isActive, type KeyStore } from '../stores/keystore.ts';

/** SHA-256 of each published API key (what a store keeps) -> where the key is published. */
export const PUBLISHED_API_KEY_HASHES: ReadonlyMap<string, string> = new Map([
  ['afad0f30043683a76e7cf9cca7031fa5fcb1c79f27a173aea45d5795839af824', 'the README (examples/demo-only-keys.yaml)'],
  ['a02958d0645fee6c1aa4d7b9f867ebf30eda4e87c4584e6e74f3cd2b635a80ee', 'docs/deployment.md (deploy/compose/keys.yaml)'],
]);

/** RFC 7638 thumbprint (SHA-256) of each published public JWK whose private key is published too. */
export const PUBLISHED_JWK_THUMBPRINTS: ReadonlyMap<string, string> = new Map([
  ['9nRmBqgiQoB9zJlbdHjTw6gjB_xp1GdVjaZHs1CNOFc', 'examples/demo-only-jwt-private-key.pem'],
]);

export interface PublishedKeyInUse {
  /** Config path that brings it in. */
  where: string;
  /** Where its secret half is published. */
  publishedIn: string;
  keyId?: string;
}

/** The published keys this config accepts: API keys in its store, signing keys in its jwks_files. */
export async function publishedKeysInUse(
  config: Config,
  resolvePath: (p: string) => string,
  keyStore?: KeyStore,
): Promise<PublishedKeyInUse[]> {
  const out: PublishedKeyInUse[] = [];
  for (const [i, issuer] of (config.credentials.jwt ?? []).entries()) {
    if (issuer.jwks_file === undefined) continue;
    let keys: unknown[];
    try {
      keys = (JSON.parse(readFileSync(resolvePath(issuer.jwks_file), 'utf8')) as { keys?: unknown[] }).keys ?? [];
    } catch {
      continue; // unreadable files are preflight's business
    }
    for (const k of keys) {
      const thumbprint = await calculateJwkThumbprint(k as JWK, 'sha256').catch(() => undefined);
      const publishedIn = thumbprint && PUBLISHED_JWK_THUMBPRINTS.get(thumbprint);
      if (publishedIn)
        out.push({ where: `credentials.jwt[${i}] (issuer ${issuer.issuer})`, publishedIn, keyId: (k as JWK).kid });
    }
  }
  if (keyStore) {
    for (const [hash, publishedIn] of PUBLISHED_API_KEY_HASHES) {
      // The local copy only: a store still loading (Redis) may miss one, it never waits.
      const record = await keyStore.findByHash(hash).catch(() => undefined);
      if (record && isActive(record, Date.now()))
        out.push({ where: 'credentials.api_key.store', publishedIn, keyId: record.id });
    }
  }
  return out;
}

export async function warnAboutPublishedKeys(
  config: Config,
  resolvePath: (p: string) => string,
  keyStore: KeyStore | undefined,
  log: Logger,
): Promise<void> {
  for (const p of await publishedKeysInUse(config, resolvePath, keyStore)) {
    log.warn(
      { config_path: p.where, key_id: p.keyId, published_in: p.publishedIn },
      'DEMO-ONLY key in use: its secret is published in this repository, so anyone can authenticate with it. Remove it before any real use',
    );
  }
}
