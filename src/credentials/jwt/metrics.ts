// JWT and JWKS metrics, registered once per registry (config reloads build new verifiers that
// share them). Label values are bounded: configured issuers (or "unknown"), reasons from code.
import { Counter, Gauge, type Registry } from 'prom-client';
import { Memo } from '../../plumbing/memo.ts';
import { HotCounter, type CounterChild } from '../../plumbing/metrics.ts';

/** What a JWKS gauge reads from a live issuer. */
export interface JwksGaugeSource {
  issuer: string;
  /** Seconds since the keys in use were fetched; undefined before the first load. */
  keysAgeSeconds(): number | undefined;
  keyCount(): number;
  /** True when the last refresh failed and the previous keys are serving. */
  stale(): boolean;
}

export class JwtMetrics {
  readonly verifications: HotCounter<'issuer' | 'result'>;
  readonly cacheLookups: HotCounter<'cache' | 'result'>;
  readonly jwksFetches: Counter<'issuer' | 'trigger' | 'result'>;
  readonly sources = new Set<JwksGaugeSource>();
  private readonly verificationChildren = new Memo<string, CounterChild>(4096);
  readonly verifiedHit: CounterChild;
  readonly verifiedMiss: CounterChild;
  readonly rejectedHit: CounterChild;

  private constructor(registry: Registry) {
    const registers = [registry];
    const sources = this.sources;
    this.verifications = new HotCounter({
      name: 'portcullis_jwt_verifications_total',
      help: 'JWT verifications (cache misses) by issuer and result: "valid" or the rejection reason',
      labelNames: ['issuer', 'result'],
      registers,
    });
    this.cacheLookups = new HotCounter({
      name: 'portcullis_jwt_cache_lookups_total',
      help: 'JWT cache lookups: cache "verified" (hit = no signature check) or "rejected" (hit = known bad token)',
      labelNames: ['cache', 'result'],
      registers,
    });
    this.jwksFetches = new Counter({
      name: 'portcullis_jwks_fetches_total',
      help: 'JWKS loads by issuer, trigger (start, refresh, unknown_kid) and result (success, failure)',
      labelNames: ['issuer', 'trigger', 'result'],
      registers,
    });
    new Gauge({
      name: 'portcullis_jwks_keys_age_seconds',
      help: 'Seconds since the JWKS keys in use for an issuer were fetched (grows while the issuer is unreachable)',
      labelNames: ['issuer'],
      registers,
      collect() {
        this.reset();
        for (const s of sources) {
          const age = s.keysAgeSeconds();
          if (age !== undefined) this.set({ issuer: s.issuer }, age);
        }
      },
    });
    new Gauge({
      name: 'portcullis_jwks_keys',
      help: 'Usable verification keys loaded for an issuer',
      labelNames: ['issuer'],
      registers,
      collect() {
        this.reset();
        for (const s of sources) this.set({ issuer: s.issuer }, s.keyCount());
      },
    });
    new Gauge({
      name: 'portcullis_jwks_stale',
      help: '1 when the last JWKS refresh for an issuer failed and the last good keys are serving',
      labelNames: ['issuer'],
      registers,
      collect() {
        this.reset();
        for (const s of sources) this.set({ issuer: s.issuer }, s.stale() ? 1 : 0);
      },
    });
    this.verifiedHit = this.cacheLookups.child({ cache: 'verified', result: 'hit' });
    this.verifiedMiss = this.cacheLookups.child({ cache: 'verified', result: 'miss' });
    this.rejectedHit = this.cacheLookups.child({ cache: 'rejected', result: 'hit' });
  }

  /** Counts a verification (one addition per call). Issuers and reasons are bounded. */
  verification(issuer: string, result: string): void {
    const key = `${issuer}\u0000${result}`;
    (
      this.verificationChildren.get(key) ??
      this.verificationChildren.set(key, this.verifications.child({ issuer, result }))
    ).inc();
  }

  private static readonly byRegistry = new WeakMap<Registry, JwtMetrics>();

  static for(registry: Registry): JwtMetrics {
    let m = JwtMetrics.byRegistry.get(registry);
    if (!m) {
      m = new JwtMetrics(registry);
      JwtMetrics.byRegistry.set(registry, m);
    }
    return m;
  }
}
