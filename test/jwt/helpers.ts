// Test helpers for the JWT suites: a JWKS server the test controls (counting requests, with
// latency and failure switches), a listener that must never be called, and token crafting.
import { constants, createSign, generateKeyPairSync, sign, type KeyObject } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, type JWK } from 'jose';

export interface TestKey {
  kid: string;
  alg: 'RS256' | 'ES256' | 'RS384';
  privateKey: KeyObject;
  publicKey: KeyObject;
  publicJwk: JWK;
}

export async function makeKey(kid: string, alg: TestKey['alg']): Promise<TestKey> {
  const { privateKey, publicKey } =
    alg === 'ES256'
      ? generateKeyPairSync('ec', { namedCurve: 'P-256' })
      : generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicJwk = { ...(await exportJWK(publicKey)), kid, use: 'sig' };
  return { kid, alg, privateKey, publicKey, publicJwk };
}

export interface JwksServer {
  url: string;
  base: string;
  keys: JWK[];
  hits: number;
  latencyMs: number;
  /** HTTP status to answer instead of the JWKS (0: serve normally). */
  failWith: number;
  close(): Promise<void>;
}

/** A JWKS endpoint the test controls: `keys` is served as is, every request counted. */
export async function startJwksServer(keys: JWK[]): Promise<JwksServer> {
  const state = { keys, hits: 0, latencyMs: 0, failWith: 0 };
  const server = createServer((req, res) => {
    state.hits++;
    const answer = () => {
      if (state.failWith) {
        res.writeHead(state.failWith).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: state.keys }));
    };
    if (state.latencyMs) setTimeout(answer, state.latencyMs);
    else answer();
  });
  const base = await listen(server);
  return Object.assign(state, {
    url: `${base}/jwks`,
    base,
    close: () => closeServer(server),
  });
}

/** A listener that records every request: a token naming it (jku, x5u) must never make us call it. */
export async function startTrap(): Promise<{ url: string; hits: string[]; close(): Promise<void> }> {
  const hits: string[] = [];
  const server = createServer((req, res) => {
    hits.push(`${req.method} ${req.url}`);
    res.writeHead(200, { 'content-type': 'application/json' }).end('{"keys":[]}');
  });
  const base = await listen(server);
  return { url: base, hits, close: () => closeServer(server) };
}

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

const b64 = (v: unknown) => Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');

/**
 * Signs any header and payload, byte for byte as given (a string payload is used verbatim, so
 * claims like `"exp":1e999` survive). node:crypto, not jose: jose would refuse to build the
 * hostile tokens these tests need. Two signatures rather than one taking `Record<string, unknown> |
 * string`: against that union a payload's `sub` reads as the deprecated String.prototype.sub.
 */
export function signRaw(
  header: Record<string, unknown>,
  payload: Record<string, unknown>,
  key: KeyObject,
  alg: string,
): string;
export function signRaw(header: Record<string, unknown>, payload: string, key: KeyObject, alg: string): string;
export function signRaw(
  header: Record<string, unknown>,
  payload: Record<string, unknown> | string,
  key: KeyObject,
  alg: string,
): string {
  const input = `${b64(header)}.${b64(payload)}`;
  const hash = `sha${alg.slice(2)}`;
  const signer = createSign(hash);
  signer.update(input);
  const sig = alg.startsWith('ES') ? signer.sign({ key, dsaEncoding: 'ieee-p1363' }) : signer.sign(key);
  return `${input}.${sig.toString('base64url')}`;
}

/**
 * Signs a signing input given as text (`<header>.<payload>`, any spelling, even non-canonical
 * base64url): for tokens whose segments decode like a valid token's but are written differently.
 * RS*, PS* (salt of the hash's length) and ES* (r || s).
 */
export function signInput(input: string, key: KeyObject, alg: string): string {
  const hash = `sha${alg.slice(2)}`;
  const options = alg.startsWith('ES')
    ? { key, dsaEncoding: 'ieee-p1363' as const }
    : alg.startsWith('PS')
      ? { key, padding: constants.RSA_PKCS1_PSS_PADDING, saltLength: constants.RSA_PSS_SALTLEN_DIGEST }
      : key;
  return `${input}.${sign(hash, Buffer.from(input), options).toString('base64url')}`;
}

/** base64url of raw bytes (a payload with invalid UTF-8 in it, say). */
export const b64bytes = (bytes: Buffer | number[]) => Buffer.from(bytes).toString('base64url');

export function unsigned(header: Record<string, unknown>, payload: Record<string, unknown>, signature = ''): string {
  return `${b64(header)}.${b64(payload)}.${signature}`;
}

export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
