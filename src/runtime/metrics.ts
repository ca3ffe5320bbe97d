// Prometheus metrics. One registry per process; credential modules register theirs on it.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Decision } from '../core/types.ts';
import { Memo } from '../plumbing/memo.ts';
import { HotCounter, type CounterChild } from '../plumbing/metrics.ts';

export class Metrics {
  readonly registry = new Registry();
  readonly decisions: HotCounter<'decision' | 'status' | 'reason' | 'route' | 'credential'>;
  readonly checkDuration: Histogram<'decision'>;
  readonly configReloads: Counter<'result'>;
  readonly ready: Gauge;
  readonly keyStoreKeys: Gauge;
  /** The running config's key store size (App sets it); undefined: no key store, the gauge reads 0. */
  keyStoreSize: (() => number) | undefined;
  readonly internalErrors: Counter;
  /** Spans lost on the way to the collector (tracing on only). */
  readonly tracingSpansDropped: Counter<'reason'>;
  readonly conditionDenies: Counter<'route' | 'condition' | 'result'>;
  readonly shadowDecisions: Counter<'route' | 'would'>;
  readonly claimHeadersSkipped: Counter<'header' | 'why'>;
  readonly mcpToolCalls: Counter<'route' | 'tool' | 'decision' | 'reason'>;
  /** Allowed Checks whose credential was sender-constrained, by binding (identity.bound). */
  readonly bound: Counter<'bound'>;
  private readonly allowDuration: Histogram.Internal<'decision'>;
  private readonly denyDuration: Histogram.Internal<'decision'>;

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry, prefix: 'portcullis_' });
    this.decisions = new HotCounter({
      name: 'portcullis_decisions_total',
      help: 'Check decisions by result, HTTP status, reason, route and credential kind',
      labelNames: ['decision', 'status', 'reason', 'route', 'credential'],
      registers,
    });
    this.checkDuration = new Histogram({
      name: 'portcullis_check_duration_seconds',
      help: 'Time from Check received to decision, in seconds',
      labelNames: ['decision'],
      buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.2, 0.5],
      registers,
    });
    this.allowDuration = this.checkDuration.labels({ decision: 'allow' });
    this.denyDuration = this.checkDuration.labels({ decision: 'deny' });
    this.configReloads = new Counter({
      name: 'portcullis_config_reloads_total',
      help: 'Config reloads by result',
      labelNames: ['result'],
      registers,
    });
    this.ready = new Gauge({
      name: 'portcullis_ready',
      help: '1 when every dependency the config names is ready',
      registers,
    });
    this.keyStoreKeys = new Gauge({
      name: 'portcullis_keystore_keys',
      help: 'API key records in the local copy of the key store',
      registers,
      // Read from the store at scrape, whatever its type: only the Redis store used to set it.
      collect: () => this.keyStoreKeys.set(this.keyStoreSize?.() ?? 0),
      // Every worker of `serve --workers N` holds the same store: one count, not N.
      aggregator: 'max',
    });
    this.mcpToolCalls = new Counter({
      name: 'portcullis_mcp_tool_calls_total',
      help: 'MCP tools/call decisions by route, matching mcp.tools pattern (_unlisted: none), decision and reason',
      labelNames: ['route', 'tool', 'decision', 'reason'],
      registers,
    });
    this.internalErrors = new Counter({
      name: 'portcullis_internal_errors_total',
      help: 'Unexpected errors (each denied with 503); see the error log',
      registers,
    });
    this.tracingSpansDropped = new Counter({
      name: 'portcullis_tracing_spans_dropped_total',
      help: 'Trace spans lost: queue_full (the export queue was full) or export_failed (the collector refused or did not answer); Checks are not affected',
      labelNames: ['reason'],
      registers,
    });
    this.conditionDenies = new Counter({
      name: 'portcullis_condition_denies_total',
      help: "Checks a route's when condition refused, by route, condition (name or routes[i].when[j]) and result (false or error)",
      labelNames: ['route', 'condition', 'result'],
      registers,
    });
    this.shadowDecisions = new Counter({
      name: 'portcullis_shadow_decisions_total',
      help: 'Checks on mode: shadow routes (all allowed), by route and the reason the decision would have had',
      labelNames: ['route', 'would'],
      registers,
    });
    this.claimHeadersSkipped = new Counter({
      name: 'portcullis_claim_headers_skipped_total',
      help: 'headers.set entries from a claim left unset (absent, empty or another type), once per identity and route',
      labelNames: ['header', 'why'],
      registers,
    });
    this.bound = new Counter({
      name: 'portcullis_sender_constrained_total',
      help: 'Allowed Checks whose credential was proven held (identity.bound: dpop, mtls, dpop+mtls)',
      labelNames: ['bound'],
      registers,
    });
  }

  // Children found level by level with the decision's own strings (reason, then route, then
  // credential kind): those are the same string objects from Check to Check (catalog constants,
  // config), so no lookup hashes anything new, where a joined key would be built and hashed on every
  // Check. The reason fixes the status (an allow is 200, a deny's status is its catalog row's).
  private readonly children = new Memo<string, Memo<string, Memo<string, CounterChild>>>(512);

  /** Counts a decision and its duration. */
  countDecision(d: Decision, seconds: number): void {
    this.decisionCounter(d).inc();
    if (d.allowed) {
      if (d.shadow) {
        this.shadowDecisions.inc({ route: d.route, would: d.shadow.reason });
        if (d.shadow.condition !== undefined) this.countCondition(d.route, d.shadow.reason, d.shadow.condition);
      }
    } else if (d.condition !== undefined) this.countCondition(d.route ?? '', d.reason, d.condition);
    if (d.allowed && d.identity?.bound !== undefined) this.bound.inc({ bound: d.identity.bound });
    (d.allowed ? this.allowDuration : this.denyDuration).observe(seconds);
    // The tool's label is the configured pattern it matched, never the client's name (unbounded).
    if (d.mcp?.tool !== undefined)
      this.mcpToolCalls.inc({
        route: d.route ?? '',
        tool: d.mcp.toolPattern ?? '_unlisted',
        decision: d.allowed ? 'allow' : 'deny',
        reason: d.reason,
      });
  }

  private countCondition(route: string, reason: string, condition: string): void {
    // The condition label without its CEL code: the code is in the log line.
    const sp = condition.indexOf(' (');
    this.conditionDenies.inc({
      route,
      condition: sp === -1 ? condition : condition.slice(0, sp),
      result: reason === 'condition_error' ? 'error' : 'false',
    });
  }

  private decisionCounter(d: Decision): CounterChild {
    const credential = d.identity?.method ?? (d.allowed ? 'none' : (d.credential ?? 'none'));
    const route = d.route ?? '';
    const byRoute = this.children.get(d.reason) ?? this.children.set(d.reason, new Memo(4096));
    const byCredential = byRoute.get(route) ?? byRoute.set(route, new Memo(64));
    return (
      byCredential.get(credential) ??
      // HotCounter.child gives the same child for the same labels: a memo emptied and refilled still counts into it.
      byCredential.set(
        credential,
        this.decisions.child({
          decision: d.allowed ? 'allow' : 'deny',
          status: String(d.status),
          reason: d.reason,
          route,
          credential,
        }),
      )
    );
  }
}
