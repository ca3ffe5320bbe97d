// `portcullis serve`: listeners, readiness, reload on SIGHUP or file change, drain on SIGTERM.
import { unwatchFile, watchFile } from 'node:fs';
import { setLogger as setGrpcLogger } from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { grpcCredentials, startGrpcServer, type GrpcListener } from '../envoy/grpc-server.ts';
import { ReloadingTlsCredentials } from '../envoy/tls-credentials.ts';
import { startOpsServer, type OpsListener } from '../http/ops-server.ts';
import { forwardAuthHandler } from '../http/forward-auth.ts';
import { loadConfigFile } from '../policy/load.ts';
import { App } from '../runtime/app.ts';
import { createLogger, exitWhenLogged } from '../runtime/logger.ts';
import { Metrics } from '../runtime/metrics.ts';

export interface ServeOptions {
  configFile: string;
  log?: Logger;
  /** Override the config's listener addresses (tests use 127.0.0.1:0). */
  grpcAddress?: string;
  httpAddress?: string;
  /** Install SIGTERM/SIGINT/SIGHUP handlers and exit the process on stop. */
  handleSignals?: boolean;
  /** Poll interval for config file changes; 0 disables watching. */
  watchIntervalMs?: number;
}

export interface Service {
  app: App;
  grpc: GrpcListener;
  ops: OpsListener;
  stop(): Promise<void>;
}

/**
 * grpc-js prints its own log lines to stderr ("E No address added out of total 1 resolved" next to
 * the bind error Portcullis reports itself). They go to the service's log instead, as JSON with
 * `component: grpc-js`, at the level grpc-js gave them (GRPC_VERBOSITY still chooses which are made).
 */
function routeGrpcLogs(log: Logger): void {
  const child = log.child({ component: 'grpc-js' });
  const text = (args: unknown[]) =>
    args.map((a) => (typeof a === 'string' ? a : a instanceof Error ? a.message : JSON.stringify(a))).join(' ');
  setGrpcLogger({
    error: (...args: unknown[]) => child.error(text(args)),
    info: (...args: unknown[]) => child.info(text(args)),
    debug: (...args: unknown[]) => child.debug(text(args)),
  });
}

/** At shutdown, queued spans get at least this long to reach the collector, even with no grace left. */
const MIN_TRACING_FLUSH_MS = 250;

export async function serve(opts: ServeOptions): Promise<Service> {
  const loaded = loadConfigFile(opts.configFile);
  const log = opts.log ?? createLogger(loaded.config.logging.level);
  const metrics = new Metrics();
  routeGrpcLogs(log);
  const app = await App.create({ loaded, log, metrics, preflight: { listeners: true } });
  const cfg = loaded.config.server;
  const grpcAddress = opts.grpcAddress ?? cfg.grpc.address;
  // Every listener or none: a server that cannot bind one of them (a port in use) must not half-run,
  // answering Checks with no health or metrics endpoint. Whatever did start is closed again.
  let grpc: GrpcListener | undefined;
  let ops: OpsListener;
  let tlsCreds: ReloadingTlsCredentials | undefined;
  try {
    // TLS certificate files are re-read on SIGHUP and when they change (TLS on/off needs a restart).
    const creds = grpcCredentials(cfg.grpc.tls, { dir: loaded.dir, log, registry: metrics.registry });
    tlsCreds = creds instanceof ReloadingTlsCredentials ? creds : undefined;
    grpc = await startGrpcServer(app, grpcAddress, creds, cfg.grpc.max_receive_message_bytes);
    ops = await startOpsServer(app, opts.httpAddress ?? cfg.http.address);
  } catch (e) {
    grpc?.forceClose();
    await app.close();
    throw e;
  }
  // Forward-auth (nginx, Traefik: the prefix itself; Envoy http_service: prefix + original path).
  // Always mounted: it answers 404 while forward_auth.enabled is false, so a reload can turn it on.
  const authzPrefix = loaded.config.forward_auth.path_prefix;
  const authz = forwardAuthHandler(app, authzPrefix);
  ops.mount(authzPrefix, authz);
  ops.mount(`${authzPrefix}/`, authz);

  let lastReady: boolean | undefined;
  const syncReadiness = () => {
    const missing = app.notReady();
    const ready = missing.length === 0;
    metrics.ready.set(ready ? 1 : 0);
    if (ready !== lastReady) {
      grpc.setServing(ready);
      if (ready) log.info({ grpc_port: grpc.port, http_port: ops.port }, 'ready: serving Checks');
      else log.warn({ waiting_for: missing }, 'not ready: health reports NOT_SERVING until these are ready');
      lastReady = ready;
    }
  };
  syncReadiness();
  const readinessTimer = setInterval(syncReadiness, 250);
  readinessTimer.unref();

  // Listener settings are bound once: a reload that changes them applies everything else and says so.
  const listeners = (c: typeof cfg) => JSON.stringify({ grpc: c.grpc, http: c.http });
  const listenerSettings = listeners(cfg);
  const reloadConfig = () =>
    app.reload().then((ok) => {
      if (ok && listeners(app.config.server) !== listenerSettings) {
        log.warn(
          { config: loaded.file },
          'server.grpc / server.http changed (addresses, TLS on/off or file paths): restart to apply them; the rest of the new config is in use',
        );
      }
      syncReadiness();
    });
  const watchMs = opts.watchIntervalMs ?? 2000;
  tlsCreds?.watch(watchMs);
  if (watchMs > 0) {
    watchFile(loaded.file, { interval: watchMs, persistent: false }, (cur, prev) => {
      if (cur.mtimeMs !== prev.mtimeMs || cur.size !== prev.size) void reloadConfig();
    });
  }

  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      const grace = app.config.server.shutdown_grace_seconds * 1000;
      const deadline = Date.now() + grace;
      log.info(
        { grace_ms: grace, in_flight: app.inFlightChecks },
        'draining: health NOT_SERVING, finishing in-flight Checks',
      );
      app.startDraining();
      clearInterval(readinessTimer);
      grpc.setServing(false);
      grpc.endWatches();
      unwatchFile(loaded.file);
      tlsCreds?.unwatch();
      await new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          log.warn({ in_flight: app.inFlightChecks }, 'grace period over; closing remaining calls');
          grpc.forceClose();
          resolve();
        }, grace);
        timer.unref();
        grpc.server.tryShutdown(() => {
          clearTimeout(timer);
          resolve();
        });
      });
      await ops.close();
      // The spans still queued get what is left of the grace period (a little at least).
      await app.close(Math.max(MIN_TRACING_FLUSH_MS, deadline - Date.now()));
      log.info('stopped');
    })());

  if (opts.handleSignals) {
    const onTerm = () => void stop().then(() => exitWhenLogged(log, 0));
    process.once('SIGTERM', onTerm);
    process.once('SIGINT', onTerm);
    process.on('SIGHUP', () => {
      tlsCreds?.reload();
      void reloadConfig();
    });
  }
  log.info(
    {
      config: loaded.file,
      grpc: grpcAddress,
      grpc_port: grpc.port,
      http_port: ops.port,
      routes: loaded.config.routes.length,
    },
    'portcullis started',
  );
  return { app, grpc, ops, stop };
}
