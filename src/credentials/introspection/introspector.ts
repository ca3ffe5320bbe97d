// Opaque token -> Identity: cache, single flight per token, admission, one call, strict reading.
// Failure paths: a token that does not pass -> InvalidCredentialError (401, cached briefly);
// the endpoint down, slow, refusing us, or over our own limits -> DependencyUnavailableError
// (503 + Retry-After). Nothing here ever allows on error.
import type { Logger } from 'pino';
import { DependencyUnavailableError, InvalidCredentialError } from '../../core/errors.ts';
import type { Identity } from '../../core/types.ts';
import { Admission } from './admission.ts';
import { readAnswer, type AnswerRules } from './answer.ts';
import { IntrospectionCache, tokenKey, type CachedAnswer } from './cache.ts';
import { IntrospectionTransportError, type RawAnswer } from './client.ts';
import type { IntrospectionMetrics } from './metrics.ts';
import type { CounterChild } from '../../plumbing/metrics.ts';

/** Answers shared by replicas (Redis), behind the local cache. Never throws; a failure is a miss. */
export interface RemoteAnswers {
  get(key: string): Promise<CachedAnswer | undefined>;
  set(key: string, answer: CachedAnswer): void;
}

export interface IntrospectorOptions {
  call(token: string): Promise<RawAnswer>;
  remote?: RemoteAnswers;
  rules: AnswerRules;
  cache: IntrospectionCache;
  admission: Admission;
  retryAfterSeconds: number;
  now(): number;
  log: Logger;
  metrics: IntrospectionMetrics;
  /** Config path, for operator-facing logs. */
  where: string;
}

/** The same outage is logged at most once per this many ms (a flood must not flood the log). */
const LOG_EVERY_MS = 10_000;

export class Introspector {
  private readonly flights = new Map<string, Promise<Identity>>();
  private lastLogged = new Map<string, number>();

  // The cached path runs on every Check: one addition per hit (HotCounter).
  private readonly hitPositive: CounterChild;
  private readonly hitNegative: CounterChild;

  constructor(private readonly o: IntrospectorOptions) {
    this.hitPositive = o.metrics.cacheHits.child({ type: 'positive' });
    this.hitNegative = o.metrics.cacheHits.child({ type: 'negative' });
  }

  async introspect(token: string): Promise<Identity> {
    const key = tokenKey(token);
    const cached = this.o.cache.get(key);
    if (cached) {
      (cached.active ? this.hitPositive : this.hitNegative).inc();
      if (cached.active) return cached.identity;
      throw new InvalidCredentialError(cached.reason);
    }
    this.o.metrics.cacheMisses.inc();
    // Single flight: concurrent Checks with the same token share one call (and its outcome).
    let flight = this.flights.get(key);
    if (!flight) {
      flight = this.fly(key, token).finally(() => this.flights.delete(key));
      this.flights.set(key, flight);
    }
    return flight;
  }

  private async fly(key: string, token: string): Promise<Identity> {
    // Another replica may have asked already. Before admission, so a token another replica knows
    // still passes while this one is refusing calls.
    if (this.o.remote) {
      const shared = await this.o.remote.get(key);
      if (shared && shared.until > this.o.now()) {
        this.o.metrics.cacheHits.inc({ type: shared.active ? 'shared_positive' : 'shared_negative' });
        if (shared.active) {
          this.o.cache.putActive(key, shared.identity, shared.until / 1000);
          return shared.identity;
        }
        this.o.cache.putRejected(key, shared.reason);
        throw new InvalidCredentialError(shared.reason);
      }
    }
    const refused = this.o.admission.tryAcquire();
    if (refused) {
      this.o.metrics.refused.inc({ limit: refused });
      this.warn(
        `refused_${refused}`,
        {
          limit: refused,
        },
        `introspection ${refused} limit reached: uncached opaque tokens are denied with 503 (raise ${this.o.where}.${refused === 'rate' ? 'max_per_second' : 'max_concurrency'} if this is legitimate traffic)`,
      );
      throw new DependencyUnavailableError(
        refused === 'rate' ? 'introspection_rate_limit' : 'introspection_concurrency_limit',
        1,
      );
    }
    const start = process.hrtime.bigint();
    let result = 'error';
    try {
      let raw: RawAnswer;
      try {
        raw = await this.o.call(token);
      } catch (e) {
        const reason = e instanceof IntrospectionTransportError ? e.reason : 'introspection_unreachable';
        result = reason === 'introspection_timeout' ? 'timeout' : 'error';
        this.warn(
          reason,
          { reason, detail: (e as Error).message },
          `introspection endpoint unavailable (${this.o.where}.endpoint): uncached opaque tokens are denied with 503`,
        );
        throw new DependencyUnavailableError(reason, this.o.retryAfterSeconds);
      }
      const answer = readAnswer(raw.status, raw.contentType, raw.body, this.o.rules, Math.floor(this.o.now() / 1000));
      switch (answer.kind) {
        case 'active':
          result = 'active';
          this.o.cache.putActive(key, answer.identity, answer.exp);
          this.share(key);
          return answer.identity;
        case 'rejected':
          result = answer.reason === 'token_inactive' ? 'inactive' : 'rejected';
          this.o.cache.putRejected(key, answer.reason);
          this.share(key);
          throw new InvalidCredentialError(answer.reason);
        case 'unusable':
          result = 'error';
          this.warn(
            answer.reason,
            { reason: answer.reason, status: raw.status },
            raw.status === 401 || raw.status === 403
              ? `introspection endpoint refused Portcullis's client credentials: check ${this.o.where}.client_id, client_secret and auth_method`
              : `introspection endpoint gave an unusable answer (${this.o.where}.endpoint): uncached opaque tokens are denied with 503`,
          );
          throw new DependencyUnavailableError(answer.reason, this.o.retryAfterSeconds);
      }
    } finally {
      this.o.admission.release();
      this.o.metrics.calls.inc({ result });
      this.o.metrics.duration.observe({ result }, Number(process.hrtime.bigint() - start) / 1e9);
    }
  }

  /** Publishes what the local cache now holds (same expiry: never past the token's exp). */
  private share(key: string): void {
    if (!this.o.remote) return;
    const entry = this.o.cache.get(key);
    if (entry) this.o.remote.set(key, entry);
  }

  private warn(kind: string, fields: Record<string, unknown>, msg: string): void {
    const t = this.o.now();
    if ((this.lastLogged.get(kind) ?? -Infinity) + LOG_EVERY_MS > t) return;
    this.lastLogged.set(kind, t);
    this.o.log.warn(fields, msg);
  }
}
