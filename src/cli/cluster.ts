// `portcullis serve --workers N`: N worker processes (node:cluster) share the gRPC and ops listeners.
// The primary only supervises: it checks the config once, forks the workers, restarts one that
// dies, forwards SIGHUP (reload) and SIGTERM/SIGINT (drain), and aggregates /metrics across workers.
// Each worker is a complete `serve` (own config generation, caches, key store copy, JWKS).
// docs/performance.md "Workers or replicas" says when to use this rather than more replicas.
import cluster, { type Worker } from 'node:cluster';
import { AggregatorRegistry } from 'prom-client';
import { ConfigError, loadConfigFile } from '../policy/load.ts';
import { createLogger, exitWhenLogged } from '../runtime/logger.ts';
import { serve } from './serve.ts';

export const DPOP_NEEDS_SHARED_REPLAY_CACHE =
  'credentials.dpop: without a redis section the DPoP replay cache is per process, and with --workers a proof replayed to another worker would pass; configure redis (docs/proof-of-possession.md) or run one process';

const METRICS_REQ = 'portcullis:cluster-metrics-req';
const METRICS_RES = 'portcullis:cluster-metrics-res';
/** More restarts than this within RESTART_WINDOW_MS: the primary gives up (a crash loop, not a blip). */
const MAX_RESTARTS = 5;
const RESTART_WINDOW_MS = 60_000;

export { parseWorkers } from './workers-option.ts';

export async function serveWithWorkers(opts: { configFile: string; workers: number }): Promise<void> {
  if (cluster.isWorker) return runWorker(opts.configFile);
  return runPrimary(opts);
}

async function runPrimary(opts: { configFile: string; workers: number }): Promise<void> {
  // A bad config fails here, once, with every problem listed, instead of in N crash-looping workers.
  const { config } = loadConfigFile(opts.configFile);
  // Unlike a rate limit (a client gets up to N times its budget), a replay cache split across
  // processes lets a stolen proof through: refused rather than warned about.
  if (config.credentials.dpop && !config.redis)
    throw new ConfigError(opts.configFile, [DPOP_NEEDS_SHARED_REPLAY_CACHE]);
  const log = createLogger(config.logging.level).child({ role: 'primary' });
  if (config.rate_limits.length && !config.redis) {
    log.warn(
      { workers: opts.workers },
      'rate_limits use the in-memory limiter, which is per process: with --workers N a client can get up to N times its limit. Configure redis to share the counters',
    );
  }
  const aggregator = new AggregatorRegistry();
  let stopping = false;
  const restarts: number[] = [];

  const fork = (slot: number): Worker => {
    const w = cluster.fork({ PORTCULLIS_WORKER: String(slot) });
    w.on('message', (msg: { type?: string; id?: number }) => {
      if (msg?.type !== METRICS_REQ) return;
      aggregator.clusterMetrics().then(
        (text) => w.isConnected() && w.send({ type: METRICS_RES, id: msg.id, text }),
        (e: Error) => w.isConnected() && w.send({ type: METRICS_RES, id: msg.id, error: e.message }),
      );
    });
    w.on('exit', (code, signal) => {
      if (stopping) return;
      const now = Date.now();
      while (restarts.length && now - restarts[0] > RESTART_WINDOW_MS) restarts.shift();
      if (restarts.length >= MAX_RESTARTS) {
        log.fatal(
          { slot, code, signal },
          `worker ${slot} died and ${MAX_RESTARTS} workers were restarted in the last minute: giving up. See the worker logs above`,
        );
        void shutdown(1);
        return;
      }
      restarts.push(now);
      log.error({ slot, code, signal }, `worker ${slot} exited unexpectedly; starting a new one`);
      fork(slot);
    });
    return w;
  };

  const shutdown = async (exitCode: number) => {
    if (stopping) return;
    stopping = true;
    const workers = Object.values(cluster.workers ?? {}).filter((w): w is Worker => !!w);
    log.info({ workers: workers.length }, 'stopping: each worker drains its in-flight Checks');
    // Workers drain within server.shutdown_grace_seconds themselves; the margin covers their exit.
    const deadline = setTimeout(
      () => {
        for (const w of workers) w.process.kill('SIGKILL');
      },
      (config.server.shutdown_grace_seconds + 5) * 1000,
    );
    deadline.unref();
    await Promise.all(
      workers.map(
        (w) =>
          new Promise<void>((resolve) => {
            if (w.isDead()) return resolve();
            w.once('exit', () => resolve());
            w.process.kill('SIGTERM');
          }),
      ),
    );
    log.info('stopped');
    await exitWhenLogged(log, exitCode);
  };

  process.once('SIGTERM', () => void shutdown(0));
  process.once('SIGINT', () => void shutdown(0));
  process.on('SIGHUP', () => {
    for (const w of Object.values(cluster.workers ?? {})) w?.process.kill('SIGHUP');
  });
  for (let i = 0; i < opts.workers; i++) fork(i);
  log.info({ workers: opts.workers, config: opts.configFile }, 'portcullis primary started');
}

async function runWorker(configFile: string): Promise<void> {
  // The primary collects each worker's own registry (prom-client's cluster protocol). Answer from
  // the start, with nothing while starting up, so a scrape never waits on a worker still loading.
  AggregatorRegistry.setRegistries([]);
  new AggregatorRegistry();
  const service = await serve({ configFile, handleSignals: true });
  const registry = service.app.metrics.registry;
  AggregatorRegistry.setRegistries([registry]);
  // ...and a scrape of /metrics, which lands on any one worker, answers for all of them.
  const pending = new Map<number, { resolve(text: string): void; reject(e: Error): void }>();
  let next = 0;
  process.on('message', (msg: { type?: string; id?: number; text?: string; error?: string }) => {
    if (msg?.type !== METRICS_RES || msg.id === undefined) return;
    const p = pending.get(msg.id);
    pending.delete(msg.id);
    if (msg.error !== undefined) p?.reject(new Error(`cluster metrics: ${msg.error}`));
    else p?.resolve(msg.text ?? '');
  });
  registry.metrics = () =>
    new Promise<string>((resolve, reject) => {
      const id = next++;
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error('cluster metrics: the primary did not answer within 5 s'));
      }, 5000);
      pending.set(id, {
        resolve: (t) => (clearTimeout(timer), resolve(t)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      });
      process.send!({ type: METRICS_REQ, id });
    });
  // The primary is gone (killed hard): nobody supervises this worker any more; drain and exit.
  process.once('disconnect', () => void service.stop().then(() => exitWhenLogged(service.app.log, 0)));
}
