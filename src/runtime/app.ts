// The running service: config + components + the Authorizer every adapter calls.
// Reload builds a whole new generation and swaps it in; a bad config never replaces a good one.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import type { Logger } from 'pino';
import { decide } from '../core/decide.ts';
import { deny } from '../core/decision.ts';
import type { AuthzRequest, Decision } from '../core/types.ts';
import { compilePolicy, type Policy } from '../policy/compile.ts';
import { ConfigError, loadConfigFile, type LoadedConfig } from '../policy/load.ts';
import type { Config } from '../policy/schema.ts';
import { createComponents, resolvePath, type Components } from './components.ts';
import { clientAddress } from '../core/ip.ts';
import { logIdentityValue, logIp, logMethod, logPath, logRequestId, looksLikeSecret, REDACTED } from './log-fields.ts';
import { preflight, type PreflightOptions } from './preflight.ts';
import { warnAboutPublishedKeys } from './published-keys.ts';
import { REDACT_PATHS } from './logger.ts';
import type { Metrics } from './metrics.ts';
import { createTracing, TRACING_OFF, TracingConfigError, type Tracing } from '../telemetry/tracing.ts';

// Decision log lines are flat (decisionFields: primitive values only), so REDACT_PATHS' nested
// paths ('*.token', 'headers[...]') can never match in them, yet pino's redaction walks each of
// them on every line. The decision logger keeps the top-level paths as the second line of defence.
const TOP_LEVEL_REDACT_PATHS = REDACT_PATHS.filter((p) => /^[a-z_]+$/.test(p));

/** SHA-256 of a file's bytes, or why it could not be read: tells an edit from the same file read again. */
function fileFingerprint(file: string): string {
  try {
    return createHash('sha256').update(readFileSync(file)).digest('hex');
  } catch (e) {
    return `unreadable: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`;
  }
}

/** A replaced tracing keeps taking the spans of Checks in flight for this long, then is flushed. */
const RETIRED_TRACING_DELAY_MS = 1000;
const RETIRED_TRACING_FLUSH_MS = 5000;

interface Generation {
  config: Config;
  dir: string;
  policy: Policy;
  components: Components;
}

export class App {
  private gen!: Generation;
  private draining = false;
  private inFlight = 0;
  private readonly decisionLog: Logger;
  private tracingNow: Tracing = TRACING_OFF;
  private tracingWanted = true;
  /** The tracing section the current tracing was made from: a reload that keeps it keeps the exporter. */
  private tracingSection = JSON.stringify(undefined);
  /** Replaced by a reload, flushed a little later (Checks still running on it end their spans first). */
  private readonly retiredTracing = new Set<Tracing>();

  private constructor(
    readonly configFile: string | undefined,
    readonly log: Logger,
    readonly metrics: Metrics,
  ) {
    this.decisionLog = log.child({}, { redact: { paths: TOP_LEVEL_REDACT_PATHS, censor: '[redacted]' } });
  }

  /**
   * Loads (or takes) a config, checks the files it names (preflight.ts; `preflight.listeners` for
   * serve's own), builds and starts its components. Throws ConfigError for a config that cannot run.
   */
  static async create(opts: {
    configFile?: string;
    loaded?: LoadedConfig;
    log: Logger;
    metrics: Metrics;
    preflight?: PreflightOptions;
    /** false: no tracing whatever the config says (a one-off `portcullis check`). */
    tracing?: boolean;
  }): Promise<App> {
    const app = new App(opts.configFile ?? opts.loaded?.file, opts.log, opts.metrics);
    const loaded = opts.loaded ?? loadConfigFile(opts.configFile!);
    app.lastAttempt = app.configFile ? { fingerprint: fileFingerprint(app.configFile), outcome: 'success' } : undefined;
    app.gen = await app.build(loaded, opts.preflight);
    app.tracingWanted = opts.tracing ?? true;
    try {
      await app.updateTracing(loaded);
    } catch (e) {
      await app.gen.components.close();
      throw e;
    }
    // Always the current generation's store: a reload may change it.
    opts.metrics.keyStoreSize = () => app.gen.components.keyStore?.size() ?? 0;
    return app;
  }

  /** The running generation's compiled policy (`portcullis check --explain` reads its routes). */
  get policy(): Policy {
    return this.gen.policy;
  }

  get config(): Config {
    return this.gen.config;
  }

  get components(): Components {
    return this.gen.components;
  }

  /** Tracing as the config's tracing section says (TRACING_OFF by default); every adapter reads it per call. */
  get tracing(): Tracing {
    return this.tracingNow;
  }

  /**
   * Starts tracing anew when the tracing section differs from the running one (OTEL_* variables
   * are read then too); the one it replaces is flushed and stopped shortly after. Throws
   * ConfigError for an OTEL_* variable that is set but wrong, with the running tracing untouched.
   */
  private async updateTracing(loaded: LoadedConfig): Promise<void> {
    if (!this.tracingWanted) return;
    const section = JSON.stringify(loaded.config.tracing);
    if (section === this.tracingSection) return;
    let next: Tracing;
    try {
      next = await createTracing(loaded.config.tracing, process.env, this.log.child({ component: 'tracing' }), {
        onSpansDropped: (count, reason) => this.metrics.tracingSpansDropped.inc({ reason }, count),
      });
    } catch (e) {
      if (e instanceof TracingConfigError) throw new ConfigError(loaded.file, [`tracing: ${e.message}`]);
      throw e;
    }
    const old = this.tracingNow;
    this.tracingNow = next;
    this.tracingSection = section;
    if (old.enabled) {
      if (!next.enabled) this.log.info('tracing off: no more spans are exported');
      this.retiredTracing.add(old);
      setTimeout(() => {
        this.retiredTracing.delete(old);
        void old.shutdown(RETIRED_TRACING_FLUSH_MS);
      }, RETIRED_TRACING_DELAY_MS).unref();
    }
  }

  private async build(loaded: LoadedConfig, preflightOptions: PreflightOptions = {}): Promise<Generation> {
    await preflight(loaded, preflightOptions);
    const components = await createComponents({
      config: loaded.config,
      dir: loaded.dir,
      log: this.log,
      metrics: this.metrics,
    });
    try {
      await components.start();
    } catch (e) {
      await components.close();
      throw e;
    }
    await warnAboutPublishedKeys(loaded.config, (p) => resolvePath(loaded.dir, p), components.keyStore, this.log);
    return {
      config: loaded.config,
      dir: loaded.dir,
      policy: compilePolicy(loaded.config, {
        onClaimHeaderSkipped: (header, why) => this.metrics.claimHeadersSkipped.inc({ header, why }),
      }),
      components,
    };
  }

  /**
   * Re-reads the config file. On any error the running config keeps serving; returns false.
   * Reloads run one at a time. The file watcher and a SIGHUP both fire for one edit: an attempt on
   * the same file text with the same outcome as the previous one is done again (a referenced file
   * may have changed) but not counted or logged again, so one change counts once.
   */
  reload(): Promise<boolean> {
    const run = this.reloading.then(() => this.reloadOnce());
    this.reloading = run.catch(() => false);
    return run;
  }

  private reloading: Promise<unknown> = Promise.resolve();
  /** File text (SHA-256) and outcome of the last load, initial one included. */
  private lastAttempt?: { fingerprint: string; outcome: string };

  private async reloadOnce(): Promise<boolean> {
    if (!this.configFile) return false;
    const fingerprint = fileFingerprint(this.configFile);
    const repeat = (outcome: string) => {
      const same = this.lastAttempt?.fingerprint === fingerprint && this.lastAttempt.outcome === outcome;
      this.lastAttempt = { fingerprint, outcome };
      return same;
    };
    try {
      const loaded = loadConfigFile(this.configFile);
      const next = await this.build(loaded);
      try {
        await this.updateTracing(loaded);
      } catch (e) {
        await next.components.close();
        throw e;
      }
      const old = this.gen;
      this.gen = next;
      if (repeat('success'))
        this.log.debug({ config: this.configFile }, 'config re-read; unchanged since the last reload');
      else {
        this.metrics.configReloads.inc({ result: 'success' });
        this.log.info({ config: this.configFile, routes: next.config.routes.length }, 'config reloaded');
      }
      // Checks already running on the old generation hold their own references.
      setTimeout(() => void old.components.close(), 5000).unref();
      return true;
    } catch (e) {
      const problems = e instanceof ConfigError ? e.problems : [(e as Error).message];
      if (repeat(`failure\n${problems.join('\n')}`)) {
        this.log.debug({ config: this.configFile }, 'config reload rejected again for the same problems');
      } else {
        this.metrics.configReloads.inc({ result: 'failure' });
        this.log.error(
          { config: this.configFile, problems },
          'config reload rejected; the previous config keeps serving. Fix the file and reload again',
        );
      }
      return false;
    }
  }

  /** Readiness of every dependency the config names; `[]` when ready. */
  notReady(): string[] {
    if (this.draining) return ['draining'];
    const out: string[] = [];
    for (const r of this.gen.components.readiness) {
      if (!r.ready()) out.push(r.detail?.() ? `${r.name}: ${r.detail()}` : r.name);
    }
    return out;
  }

  isReady(): boolean {
    return this.notReady().length === 0;
  }

  startDraining(): void {
    this.draining = true;
  }

  get inFlightChecks(): number {
    return this.inFlight;
  }

  /** The one entry point for every adapter: decide, count, log. Never throws. */
  async check(req: AuthzRequest): Promise<Decision> {
    const start = performance.now();
    const gen = this.gen;
    this.inFlight++;
    let d: Decision;
    try {
      d = await decide(req, gen.policy, gen.components.deps);
    } catch (e) {
      this.metrics.internalErrors.inc();
      this.log.error(
        {
          err: { message: (e as Error)?.message, stack: (e as Error)?.stack },
          request_id: logRequestId(
            req.requestId,
            gen.policy.extract.apiKeyPrefix,
            presentedCredentials(req, gen.policy),
          ),
        },
        'unexpected error while deciding; denied with 503',
      );
      d = deny('internal_error', gen.policy.realm, { retryAfterSeconds: 1 });
    } finally {
      this.inFlight--;
    }
    const seconds = (performance.now() - start) / 1000;
    this.metrics.countDecision(d, seconds);
    if (!d.allowed) this.logDeny(req, d, gen.policy);
    else if (d.shadow && d.reason === 'shadow')
      this.decisionLog.info(this.decisionFields(req, d, gen.policy), 'allowed in shadow mode; would have denied');
    else if (this.decisionLog.isLevelEnabled('debug'))
      this.decisionLog.debug(this.decisionFields(req, d, gen.policy), 'allowed');
    return d;
  }

  private decisionFields(req: AuthzRequest, d: Decision, policy: Policy) {
    // Never headers, never credentials: only what an operator needs to find the request, and every
    // value the client wrote validated or bounded (log-fields.ts).
    const prefix = policy.extract.apiKeyPrefix;
    const presented = presentedCredentials(req, policy);
    const peer = logIp(req.sourceIp);
    // On a shadow route's would-be deny: who would have been refused (the allow itself carries no identity).
    const who = d.identity ?? (d.allowed ? d.shadow?.identity : undefined);
    const client = policy.sourceIp
      ? logIp(clientAddress(req.sourceIp, req.headers[policy.sourceIp.header], policy.sourceIp.trustedHops))
      : peer;
    return {
      request_id: logRequestId(req.requestId, prefix, presented),
      method: logMethod(req.method),
      path: logPath(req.rawPath, prefix, presented),
      route: d.route,
      status: d.status,
      reason: d.reason,
      credential: who?.method ?? (d.allowed ? undefined : d.credential),
      client_id: logIdentityValue(who?.clientId),
      key_id: logIdentityValue(who?.keyId),
      source_ip: client,
      peer_ip: client === peer ? undefined : peer,
      // Which condition refused (its name or config path, and CEL code): from the config, never a value.
      condition: d.allowed ? d.shadow?.condition : d.condition,
      ...(d.allowed && d.shadow
        ? { shadow: true, would_status: d.shadow.status, would_reason: d.shadow.reason }
        : undefined),
      mcp_method: d.mcp ? logIdentityValue(d.mcp.method) : undefined,
      mcp_tool:
        d.mcp?.tool === undefined
          ? undefined
          : looksLikeSecret(d.mcp.tool, prefix, presented)
            ? REDACTED
            : logIdentityValue(d.mcp.tool),
    };
  }

  private logDeny(req: AuthzRequest, d: Decision, policy: Policy): void {
    if (d.reason === 'internal_error')
      this.decisionLog.error(this.decisionFields(req, d, policy), 'denied after an internal error');
    else this.decisionLog.info(this.decisionFields(req, d, policy), 'denied');
  }

  /**
   * Closes the components, then flushes the spans still queued, waiting at most `tracingFlushMs`
   * for the collector (what it has not taken by then is lost, and logged).
   */
  async close(tracingFlushMs = 2000): Promise<void> {
    await this.gen.components.close();
    const all = [this.tracingNow, ...this.retiredTracing];
    this.retiredTracing.clear();
    await Promise.all(all.map((t) => t.shutdown(tracingFlushMs)));
  }
}

/** The credential values this request carries in headers (whole, and after an auth scheme). */
function presentedCredentials(req: AuthzRequest, policy: Policy): string[] {
  const out: string[] = [];
  for (const h of policy.credentialHeaders) {
    const v = req.headers[h]?.trim();
    if (!v) continue;
    out.push(v);
    const sp = v.indexOf(' ');
    if (sp !== -1) out.push(v.slice(sp + 1).trim());
  }
  return out;
}
