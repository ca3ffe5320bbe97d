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
  }): Promise<App> {
    const app = new App(opts.configFile ?? opts.loaded?.file, opts.log, opts.metrics);
    const loaded = opts.loaded ?? loadConfigFile(opts.configFile!);
    app.lastAttempt = app.configFile ? { fingerprint: fileFingerprint(app.configFile), outcome: 'success' } : undefined;
    app.gen = await app.build(loaded, opts.preflight);
    // Always the current generation's store: a reload may change it.
    opts.metrics.keyStoreSize = () => app.gen.components.keyStore?.size() ?? 0;
    return app;
  }

  get config(): Config {
    return this.gen.config;
  }

  get components(): Components {
    return this.gen.components;
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
    return { config: loaded.config, dir: loaded.dir, policy: compilePolicy(loaded.config), components };
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
      const next = await this.build(loadConfigFile(this.configFile));
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
      credential: d.identity?.method ?? (d.allowed ? undefined : d.credential),
      client_id: logIdentityValue(d.identity?.clientId),
      key_id: logIdentityValue(d.identity?.keyId),
      source_ip: client,
      peer_ip: client === peer ? undefined : peer,
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

  async close(): Promise<void> {
    await this.gen.components.close();
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
