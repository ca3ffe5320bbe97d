// The portcullis command line: serve, check, keys, config check. Exit codes: src/cli/usage.ts.
import { readFileSync } from 'node:fs';
import { Command, InvalidArgumentError, Option } from 'commander';
import { ConfigError, loadConfigFile } from '../policy/load.ts';
import type { CheckOptions } from './check.ts';
import { parseWorkers } from './workers-option.ts';
import { keysCommand } from './keys.ts';
import { exitFor, mustGive, requireOptions } from './usage.ts';

const { version } = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string;
};

// Commands load what they need when they run: `keys` and `config check` start in a fraction of
// the time `serve` needs (gRPC, protos, every credential module).

const program = new Command('portcullis')
  .description('Envoy ext_authz service: API keys, JWT and opaque OAuth2 tokens, scope rules, header hygiene')
  .version(version, '-V, --version', 'print the version')
  .addHelpText(
    'after',
    '\nExit codes: 0 success (check: allowed), 1 check denied or a failure at run time, 2 usage or config error.',
  );

const configOption = () => mustGive(new Option('-c, --config <file>', 'config file (YAML)').env('PORTCULLIS_CONFIG'));

program
  .command('serve')
  .description('run the gRPC ext_authz server and the ops HTTP listener')
  .addOption(configOption())
  .addOption(
    new Option(
      '-w, --workers <n>',
      'worker processes sharing the listeners (node:cluster); "auto": one per CPU. See docs/performance.md',
    )
      .env('PORTCULLIS_WORKERS')
      .argParser(workersArg)
      .default(1),
  )
  .action(async (opts: { config: string; workers: number }) => {
    const { default: cluster } = await import('node:cluster');
    if (opts.workers > 1 || cluster.isWorker) {
      const { serveWithWorkers } = await import('./cluster.ts');
      await serveWithWorkers({ configFile: opts.config, workers: opts.workers });
    } else {
      const { serve } = await import('./serve.ts');
      await serve({ configFile: opts.config, handleSignals: true });
    }
  });

function workersArg(value: string): number {
  try {
    return parseWorkers(value);
  } catch (e) {
    throw new InvalidArgumentError((e as Error).message);
  }
}

function collect(value: string, prev: string[]): string[] {
  return [...prev, value];
}

program
  .command('check')
  .description(
    'print the decision for one request as JSON, without a server (exit 0 allowed, 1 denied, 2 usage or config error)',
  )
  .addOption(configOption())
  .option('-X, --method <method>', 'HTTP method', 'GET')
  .addOption(mustGive(new Option('-p, --path <path>', 'request path, with query')))
  .option('--host <host>', 'request host (:authority)', 'localhost')
  .option('-H, --header <header>', "request header 'name: value' (repeatable)", collect, [])
  .option('--source-ip <ip>', 'client address as Envoy would see it', '127.0.0.1')
  .option('--context <key=value>', 'Envoy context_extensions entry (repeatable)', collect, [])
  .option(
    '--explain',
    "also print the route chosen and why, each of its conditions with its result, and the claims they read (prints claim values: for the operator's own token)",
  )
  .option('-d, --data <body>', "request body, as Envoy's with_request_body sends it (an MCP route's JSON-RPC message)")
  .action(async (opts: CheckOptions) => {
    const { runCheck } = await import('./check.ts');
    process.exitCode = await runCheck(opts);
  });

program.addCommand(keysCommand(configOption));

program
  .command('config')
  .description('configuration tools')
  .command('check')
  .description(
    'validate a config file as serve would, files it names included; exits 2 listing every error with its path',
  )
  .argument('<file>', 'config file')
  .option(
    '--no-files',
    'check the config alone, not the files it names (e.g. in CI, where certificates and key stores are not present)',
  )
  .action(async (file: string, opts: { files: boolean }) => {
    const loaded = loadConfigFile(file);
    // With tracing on, the OTEL_* variables of this environment, as serve reads them.
    const { resolveTracing, TracingConfigError } = await import('../telemetry/config.ts');
    try {
      resolveTracing(loaded.config.tracing, process.env);
    } catch (e) {
      throw e instanceof TracingConfigError ? new ConfigError(loaded.file, [`tracing: ${e.message}`]) : e;
    }
    if (opts.files) {
      const { preflight } = await import('../runtime/preflight.ts');
      await preflight(loaded, { listeners: true });
    }
    console.log(
      `${file}: valid (${loaded.config.routes.length} routes${opts.files ? '' : '; the files it names were not checked'})`,
    );
  });

requireOptions(program);

program.parseAsync(process.argv).catch((e: unknown) => {
  const { code, message } = exitFor(e);
  if (message) console.error(message);
  // Exit now: a command that failed half-way must not linger on a timer or a socket it opened.
  process.exit(code);
});
