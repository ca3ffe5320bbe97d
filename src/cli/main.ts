// The portcullis command line: serve, check, keys, config check.
import { Command, InvalidArgumentError, Option } from 'commander';
import { pino } from 'pino';
import { ConfigError, loadConfigFile } from '../policy/load.ts';
import { parseWorkers } from '../runtime/workers-option.ts';
import { keysCommand } from './keys.ts';

// Commands load what they need when they run: `keys` and `config check` start in a fraction of
// the time `serve` needs (gRPC, protos, every credential module).

const program = new Command('portcullis')
  .description('Envoy ext_authz service: API keys, JWT and opaque OAuth2 tokens, scope rules, header hygiene')
  .showHelpAfterError();

const configOption = () =>
  new Option('-c, --config <file>', 'config file (YAML)').env('PORTCULLIS_CONFIG').makeOptionMandatory();

program
  .command('serve')
  .description('run the gRPC ext_authz server and the ops HTTP listener')
  .addOption(configOption())
  .addOption(
    new Option('-w, --workers <n>', 'worker processes sharing the listeners (node:cluster); "auto": one per CPU. See docs/performance.md')
      .env('PORTCULLIS_WORKERS')
      .argParser(workersArg)
      .default(1),
  )
  .action(async (opts: { config: string; workers: number }) => {
    const { default: cluster } = await import('node:cluster');
    if (opts.workers > 1 || cluster.isWorker) {
      const { serveWithWorkers } = await import('../runtime/cluster.ts');
      await serveWithWorkers({ configFile: opts.config, workers: opts.workers });
    } else {
      const { serve } = await import('../runtime/serve.ts');
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
  .description('print the decision for one request as JSON, without a server (exit 0 allowed, 1 denied)')
  .addOption(configOption())
  .option('-X, --method <method>', 'HTTP method', 'GET')
  .requiredOption('-p, --path <path>', 'request path, with query')
  .option('--host <host>', 'request host (:authority)', 'localhost')
  .option('-H, --header <header>', "request header 'name: value' (repeatable)", collect, [])
  .option('--source-ip <ip>', 'client address as Envoy would see it', '127.0.0.1')
  .option('--context <key=value>', 'Envoy context_extensions entry (repeatable)', collect, [])
  .action(async (opts) => {
    const { runCheck } = await import('./check.ts');
    process.exitCode = await runCheck(opts);
  });

program.addCommand(keysCommand(configOption));

program
  .command('config')
  .description('configuration tools')
  .command('check')
  .description('validate a config file; exits non-zero listing every error with its path')
  .argument('<file>', 'config file')
  .action((file: string) => {
    try {
      const { config } = loadConfigFile(file);
      console.log(`${file}: valid (${config.routes.length} routes)`);
    } catch (e) {
      if (e instanceof ConfigError) {
        console.error(e.message);
        process.exitCode = 1;
      } else throw e;
    }
  });

program.parseAsync(process.argv).catch((e: unknown) => {
  if (e instanceof ConfigError) console.error(e.message);
  else console.error(`portcullis: ${(e as Error).message}`);
  process.exitCode = 2;
  pino().flush?.();
});
