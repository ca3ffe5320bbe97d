// Admission for introspection calls: at most N in flight and a token bucket of M per second.
// This is what keeps a flood of random tokens from becoming a flood of calls to the
// authorization server: a call that is not admitted is denied at once (503), never queued,
// because a queued Check would only miss Envoy's deadline anyway.

export type Refusal = 'concurrency' | 'rate';

export class Admission {
  private inFlight = 0;
  private tokens: number;
  private last: number;

  constructor(
    private readonly maxConcurrency: number,
    private readonly perSecond: number,
    private readonly now: () => number,
  ) {
    this.tokens = perSecond;
    this.last = now();
  }

  /** Takes a slot; returns why not when refused. Call release() once for every admitted call. */
  tryAcquire(): Refusal | undefined {
    if (this.inFlight >= this.maxConcurrency) return 'concurrency';
    const t = this.now();
    // Burst capacity: one second's worth.
    this.tokens = Math.min(this.perSecond, this.tokens + ((t - this.last) / 1000) * this.perSecond);
    this.last = t;
    if (this.tokens < 1) return 'rate';
    this.tokens -= 1;
    this.inFlight++;
    return undefined;
  }

  release(): void {
    this.inFlight--;
  }

  get active(): number {
    return this.inFlight;
  }
}
