// Introspection and phantom-token metrics on the shared registry. Components are rebuilt on
// every config reload, so metrics are looked up before they are created (a registry refuses a
// second metric of the same name).
import { Counter, Histogram, type Registry } from 'prom-client';
import { HotCounter, registeredMetric } from '../../plumbing/metrics.ts';

function counter<L extends string>(registry: Registry, name: string, help: string, labelNames: L[]): Counter<L> {
  return registeredMetric(registry, name, () => new Counter({ name, help, labelNames, registers: [registry] }));
}

export interface IntrospectionMetrics {
  /** result: active | inactive | rejected | error | timeout | overloaded */
  calls: Counter<'result'>;
  /** On the cached path of every Check: hot children. */
  cacheHits: HotCounter<'type'>;
  cacheMisses: Counter;
  refused: Counter<'limit'>;
  duration: Histogram<'result'>;
}

export function introspectionMetrics(registry: Registry): IntrospectionMetrics {
  const durationName = 'portcullis_introspection_duration_seconds';
  return {
    calls: counter(
      registry,
      'portcullis_introspection_requests_total',
      'Introspection calls to the authorization server by result (active, inactive, rejected, error, timeout)',
      ['result'],
    ),
    cacheHits: HotCounter.in(registry, {
      name: 'portcullis_introspection_cache_hits_total',
      help: 'Opaque tokens answered from the introspection cache, by type (positive, negative)',
      labelNames: ['type'],
    }),
    cacheMisses: counter(
      registry,
      'portcullis_introspection_cache_misses_total',
      'Opaque tokens not in the introspection cache',
      [],
    ),
    refused: counter(
      registry,
      'portcullis_introspection_refused_total',
      'Introspection calls not made because a limit was reached (concurrency, rate): each denied with 503',
      ['limit'],
    ),
    duration: registeredMetric(
      registry,
      durationName,
      () =>
        new Histogram({
          name: durationName,
          help: 'Introspection call latency in seconds, by result',
          labelNames: ['result'],
          buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.5, 1],
          registers: [registry],
        }),
    ),
  };
}

export function phantomTokensIssued(registry: Registry): Counter<'credential'> {
  return counter(
    registry,
    'portcullis_phantom_tokens_issued_total',
    'Phantom JWTs signed for upstreams, by credential kind',
    ['credential'],
  );
}
