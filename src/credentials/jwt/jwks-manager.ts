// One issuer's keys over time: loaded at start, refreshed in the background, refetched when a
// token names an unknown kid (at most once per cooldown, concurrent misses sharing one fetch), and
// kept when the issuer is unreachable (last good keys serve; a metric and a log say so).
//
// A Check never waits on the network longer than `unknown_kid_wait_ms` (default 100 ms, inside
// Envoy's 200 ms deadline); the fetch itself continues in the background under its own timeout.
import type { Logger } from 'pino';
import { DependencyUnavailableError, InvalidCredentialError } from '../../core/errors.ts';
import type { JwtIssuerConfig } from '../../policy/schema.ts';
import { KeySet, type VerificationKey } from './key-set.ts';
import type { JwksSource } from './jwks-source.ts';
import type { JwksGaugeSource, JwtMetrics } from './metrics.ts';

type Trigger = 'start' | 'refresh' | 'unknown_kid';

/** Keys carried from one config generation to the next (a reload during an issuer outage keeps serving). */
export interface CarriedKeys {
  keys: KeySet;
  loadedAt: number;
  stale: boolean;
}

const MAX_RETRY_MS = 60_000;
const FIRST_RETRY_MS = 1_000;

export class JwksManager implements JwksGaugeSource {
  readonly issuer: string;
  private keys?: KeySet;
  private loadedAt?: number;
  private lastError?: string;
  private failedSinceLoad = false;
  private consecutiveFailures = 0;
  private inflight?: Promise<void>;
  private lastKidRefetchAt = Number.NEGATIVE_INFINITY;
  private timer?: NodeJS.Timeout;
  private closed = false;
  private firstAttempt?: Promise<void>;
  private lastSkipped = '[]';
  private readonly algorithms: ReadonlySet<string>;
  private readonly refreshMs: number;
  private readonly cooldownMs: number;
  private readonly waitMs: number;
  private readonly where: string;

  constructor(
    cfg: JwtIssuerConfig,
    index: number,
    private readonly source: JwksSource,
    private readonly metrics: JwtMetrics,
    private readonly log: Logger,
    private readonly now: () => number = Date.now,
    /** Shared across generations of one service; keyed so only an identical source and algorithm list reuse keys. */
    private readonly carried?: Map<string, CarriedKeys>,
  ) {
    this.issuer = cfg.issuer;
    this.algorithms = new Set(cfg.algorithms);
    this.refreshMs = cfg.jwks_refresh_seconds * 1000;
    this.cooldownMs = cfg.jwks_cooldown_seconds * 1000;
    this.waitMs = cfg.unknown_kid_wait_ms;
    this.where = `credentials.jwt[${index}]`;
    this.carryKey = `${cfg.issuer}\u0000${source.description}\u0000${[...this.algorithms].join(',')}`;
  }

  private readonly carryKey: string;

  /** Starts loading; resolves after the first attempt (success or failure), not necessarily ready. */
  start(): Promise<void> {
    this.metrics.sources.add(this);
    const previous = this.carried?.get(this.carryKey);
    if (previous && !this.keys) {
      this.keys = previous.keys;
      this.loadedAt = previous.loadedAt;
      this.failedSinceLoad = previous.stale;
    }
    this.firstAttempt ??= this.refresh('start');
    return this.firstAttempt;
  }

  ready(): boolean {
    return this.keys !== undefined;
  }

  /** Why not ready, for /readyz. */
  detail(): string | undefined {
    if (this.keys) return undefined;
    return this.lastError
      ? `keys not loaded from ${this.source.description}: ${this.lastError}`
      : `loading keys from ${this.source.description}`;
  }

  keysAgeSeconds(): number | undefined {
    return this.loadedAt === undefined ? undefined : (this.now() - this.loadedAt) / 1000;
  }

  keyCount(): number {
    return this.keys?.size ?? 0;
  }

  stale(): boolean {
    return this.failedSinceLoad && this.keys !== undefined;
  }

  /** Whether a key is still published (a verified-token cache entry is only good while it is). */
  isLive(key: VerificationKey): boolean {
    return this.keys?.live.has(key) ?? false;
  }

  /**
   * The key for (kid, alg) when the loaded keys hold exactly it: the common case, answered without
   * a promise. Undefined means ask keyFor, which waits, refetches or gives the precise rejection.
   */
  loadedKey(kid: string | undefined, alg: string): VerificationKey | undefined {
    const found = this.keys?.lookup(kid, alg);
    return found?.status === 'found' ? found.key : undefined;
  }

  /**
   * The key that must have signed a token with this kid and alg. Throws InvalidCredentialError
   * (401) when no such key exists, DependencyUnavailableError (503) when that cannot be known yet.
   */
  async keyFor(kid: string | undefined, alg: string): Promise<VerificationKey> {
    if (!this.keys) {
      if (this.inflight) await this.waitBounded(this.inflight);
      if (!this.keys) throw new DependencyUnavailableError('jwks_not_loaded', 1);
    }
    let found = this.keys.lookup(kid, alg);
    if (found.status === 'found') return found.key;
    if (found.status === 'no_alg') throw new InvalidCredentialError('jwt_key_alg_mismatch');
    if (found.status === 'ambiguous') throw new InvalidCredentialError('jwt_kid_missing');

    // Unknown kid: perhaps the issuer rotated. Share a fetch in progress, or start one if the
    // cooldown allows; otherwise answer from what we have.
    let pending = this.inflight;
    if (!pending && this.now() - this.lastKidRefetchAt >= this.cooldownMs) {
      this.lastKidRefetchAt = this.now();
      pending = this.refresh('unknown_kid');
    }
    if (pending) {
      const settled = await this.waitBounded(pending);
      if (!settled) throw new DependencyUnavailableError('jwks_refresh_pending', 1);
      found = this.keys.lookup(kid, alg);
      if (found.status === 'found') return found.key;
    }
    // The issuer could not be asked: the kid may be a new, valid key we cannot see yet.
    if (this.failedSinceLoad) throw new DependencyUnavailableError('jwks_unavailable', 5);
    throw new InvalidCredentialError(found.status === 'no_alg' ? 'jwt_key_alg_mismatch' : 'jwt_kid_unknown');
  }

  /** Waits for `p` at most waitMs; true if it settled. */
  private async waitBounded(p: Promise<void>): Promise<boolean> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), this.waitMs);
    });
    try {
      return await Promise.race([p.then(() => true as const), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** One load at a time: concurrent callers share it. Never rejects. */
  private refresh(trigger: Trigger): Promise<void> {
    if (this.inflight) return this.inflight;
    const p = this.load(trigger).finally(() => {
      this.inflight = undefined;
      this.schedule();
    });
    this.inflight = p;
    return p;
  }

  private async load(trigger: Trigger): Promise<void> {
    try {
      const doc = await this.source.load({ full: trigger !== 'unknown_kid' });
      const next = await KeySet.fromJwks(doc, this.algorithms, this.keys);
      if (next.size === 0) {
        const why = next.skipped.map((s) => `${s.kid ?? '(no kid)'}: ${s.why}`).join('; ');
        throw new Error(`no usable key for algorithms ${[...this.algorithms].join(', ')}${why ? ` (${why})` : ''}`);
      }
      if (this.closed) return;
      const recovered = this.failedSinceLoad || this.keys === undefined;
      const previousKids = this.keys?.kids.join(',');
      this.keys = next;
      this.loadedAt = this.now();
      this.lastError = undefined;
      this.failedSinceLoad = false;
      this.consecutiveFailures = 0;
      this.metrics.jwksFetches.inc({ issuer: this.issuer, trigger, result: 'success' });
      this.carried?.set(this.carryKey, { keys: next, loadedAt: this.loadedAt, stale: false });
      const fields = {
        issuer: this.issuer,
        source: this.source.description,
        trigger,
        kids: next.kids,
        keys: next.size,
      };
      // Said once per distinct JWKS, not at every refresh (many issuers publish encryption keys too).
      const skipped = JSON.stringify(next.skipped);
      if (next.skipped.length && skipped !== this.lastSkipped) {
        this.log.warn({ ...fields, skipped: next.skipped }, 'JWKS loaded; some keys are unusable and ignored');
      }
      this.lastSkipped = skipped;
      if (recovered) this.log.info(fields, 'JWKS loaded: tokens from this issuer can be verified');
      else if (previousKids !== next.kids.join(',')) this.log.info(fields, 'JWKS changed');
    } catch (e) {
      if (this.closed) return;
      const message = (e as Error).message;
      this.metrics.jwksFetches.inc({ issuer: this.issuer, trigger, result: 'failure' });
      this.consecutiveFailures++;
      const firstFailure = this.lastError === undefined;
      this.lastError = message;
      if (this.keys) {
        if (!this.failedSinceLoad) {
          this.log.warn(
            {
              issuer: this.issuer,
              source: this.source.description,
              trigger,
              error: message,
              keys_age_seconds: Math.round(this.keysAgeSeconds()!),
            },
            'JWKS refresh failed: the last good keys keep serving (metric portcullis_jwks_stale=1); tokens signed by new keys are refused until the issuer is reachable',
          );
        }
        this.failedSinceLoad = true;
        this.carried?.set(this.carryKey, { keys: this.keys, loadedAt: this.loadedAt!, stale: true });
      } else if (firstFailure || this.consecutiveFailures % 10 === 0) {
        this.log.error(
          { issuer: this.issuer, source: this.source.description, error: message, attempts: this.consecutiveFailures },
          `JWKS could not be loaded: /readyz answers 503 and this issuer's tokens get 503 until it loads. Check ${this.where} and that the issuer is reachable; retrying`,
        );
      }
    }
  }

  private schedule(): void {
    if (this.closed) return;
    clearTimeout(this.timer);
    const delay = this.lastError
      ? Math.min(
          FIRST_RETRY_MS * 2 ** Math.max(0, this.consecutiveFailures - 1),
          MAX_RETRY_MS,
          this.refreshMs || MAX_RETRY_MS,
        )
      : this.refreshMs;
    if (delay <= 0) return;
    this.timer = setTimeout(() => void this.refresh('refresh'), delay);
    this.timer.unref();
  }

  close(): void {
    this.closed = true;
    clearTimeout(this.timer);
    this.metrics.sources.delete(this);
  }
}
