// DPoP server nonces for a resource server (RFC 9449, §9), without shared state.
//
// A nonce names a time window and carries an HMAC of it: `<window in base 36>.<22 base64url
// characters>` (HMAC-SHA-256 truncated to 128 bits). Every replica that has the same secret issues
// and accepts the same nonces, so nothing is stored and nothing crosses the network. A nonce is
// accepted during its own window and the next one: between `window_seconds` and twice that after
// it was issued. One nonce serves every client in a window; it proves that a proof was made after
// the server handed it out (no proof can be made in advance), it does not identify the client.
//
// The secret comes from the config (`credentials.dpop.nonce_secret`, the same on every replica) or,
// when absent, is drawn at start: then each replica, and each restart, has its own, and a client
// whose next request lands elsewhere is simply asked again (one extra round trip).
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

export const MIN_NONCE_SECRET_BYTES = 32;
const MAC_CHARS = 22; // 128 bits of base64url
const NONCE = /^([0-9a-z]{1,11})\.([A-Za-z0-9_-]{22})$/;
const DOMAIN = 'portcullis dpop-nonce v1\n';

export type NonceCheck =
  /** Issued in the current window. */
  | 'valid'
  /** Issued in the previous window: accepted; send the current one with the answer (RFC 9449, §8.2). */
  | 'valid-renew'
  /** Not one of ours, or too old. */
  | 'invalid';

export interface DpopNonceOptions {
  /** Shared secret, at least 32 bytes (UTF-8); drawn at random when absent. */
  secret?: string | Uint8Array;
  /** Length of one window, seconds (≥ 1). */
  windowSeconds: number;
}

export class DpopNonces {
  private readonly key: Buffer;
  private readonly windowMs: number;
  /** True when the secret was drawn at start (replicas do not share it). */
  readonly generatedSecret: boolean;
  private cachedWindow = -1;
  private cachedNonce = '';

  constructor(opts: DpopNonceOptions, configPath = 'credentials.dpop.nonce_secret') {
    if (!Number.isFinite(opts.windowSeconds) || opts.windowSeconds < 1)
      throw new Error('credentials.dpop.nonce_window_seconds: must be at least 1');
    this.windowMs = Math.round(opts.windowSeconds * 1000);
    if (opts.secret === undefined) {
      this.key = randomBytes(32);
      this.generatedSecret = true;
    } else {
      this.key = typeof opts.secret === 'string' ? Buffer.from(opts.secret, 'utf8') : Buffer.from(opts.secret);
      if (this.key.length < MIN_NONCE_SECRET_BYTES) {
        throw new Error(
          `${configPath}: the secret is ${this.key.length} bytes; use at least ${MIN_NONCE_SECRET_BYTES} random bytes (e.g. \${env:DPOP_NONCE_SECRET} set to the output of: openssl rand -base64 48)`,
        );
      }
      this.generatedSecret = false;
    }
  }

  private mac(window: number): string {
    return createHmac('sha256', this.key)
      .update(DOMAIN + window.toString(36))
      .digest('base64url')
      .slice(0, MAC_CHARS);
  }

  private window(nowMs: number): number {
    return Math.floor(nowMs / this.windowMs);
  }

  /** The nonce to send now (`DPoP-Nonce` header value). */
  current(nowMs = Date.now()): string {
    const w = this.window(nowMs);
    if (w !== this.cachedWindow) {
      this.cachedNonce = `${w.toString(36)}.${this.mac(w)}`;
      this.cachedWindow = w;
    }
    return this.cachedNonce;
  }

  /** Whether a proof's `nonce` claim is one of ours and fresh. Any value is safe to pass. */
  check(nonce: unknown, nowMs = Date.now()): NonceCheck {
    if (typeof nonce !== 'string' || nonce.length > 40) return 'invalid';
    const m = NONCE.exec(nonce);
    if (!m) return 'invalid';
    const w = parseInt(m[1], 36);
    const now = this.window(nowMs);
    if (w !== now && w !== now - 1) return 'invalid';
    const expected = Buffer.from(
      w === this.cachedWindow ? this.cachedNonce.slice(this.cachedNonce.indexOf('.') + 1) : this.mac(w),
    );
    const given = Buffer.from(m[2]);
    if (!timingSafeEqual(expected, given)) return 'invalid';
    return w === now ? 'valid' : 'valid-renew';
  }
}
