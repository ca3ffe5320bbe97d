// What the command line promises about exit codes, in one place: 0 success (check: allowed),
// 1 check denied or a failure at run time (a port in use, Redis unreachable), 2 usage or config error.
import { Command, CommanderError, InvalidArgumentError, type Option } from 'commander';
import { KeyAdminError } from '../credentials/api-key/admin.ts';
import { ConfigError } from '../policy/load.ts';
import { KeyFileError } from '../stores/file-keystore.ts';

export const EXIT_USAGE = 2;
export const EXIT_FAILURE = 1;

/** Bad input on the command line that commander itself cannot see (a malformed -H value, ...). */
export class UsageError extends Error {
  override name = 'UsageError';
}

// Options that must be given are checked after commander has looked for unknown options, so that
// `check --pth /v1` says "unknown option '--pth'" rather than "required option '--path' not specified".
const required = new WeakSet<Option>();

/** Marks an option as required; `requireOptions` enforces it once the options parsed cleanly. */
export function mustGive<T extends Option>(option: T): T {
  required.add(option);
  return option;
}

/** Installs the checks and the exit-code mapping on a finished command tree. */
export function requireOptions(program: Command): void {
  program.hook('preAction', (_root, action) => {
    for (const o of action.options) {
      const value: unknown = action.getOptionValue(o.attributeName());
      // An empty value (`--config ''`, PORTCULLIS_CONFIG=) names nothing either.
      if (required.has(o) && (value === undefined || value === '')) {
        const env = o.envVar ? ` (or set ${o.envVar})` : '';
        action.error(`error: required option '${o.flags}' not specified${env}`, {
          code: 'commander.missingMandatoryOptionValue',
          exitCode: EXIT_USAGE,
        });
      }
    }
  });
  const visit = (c: Command) => {
    // Throw instead of process.exit(1): main() maps every usage error to exit code 2.
    c.exitOverride();
    c.showHelpAfterError(`(run \`${commandPath(c)} --help\` for usage)`);
    for (const sub of c.commands) visit(sub);
  };
  visit(program);
}

function commandPath(c: Command): string {
  const names: string[] = [];
  for (let x: Command | null = c; x; x = x.parent) names.unshift(x.name());
  return names.join(' ');
}

/** The exit code for an error that ended a command, and what to print (undefined: already printed). */
export function exitFor(e: unknown): { code: number; message?: string } {
  if (e instanceof CommanderError) {
    // commander has printed its message (or the help / version); help and --version are code 0.
    return { code: e.exitCode === 0 ? 0 : EXIT_USAGE };
  }
  if (e instanceof ConfigError) return { code: EXIT_USAGE, message: e.message };
  if (
    e instanceof UsageError ||
    e instanceof KeyAdminError ||
    e instanceof KeyFileError ||
    e instanceof InvalidArgumentError
  ) {
    return { code: EXIT_USAGE, message: `portcullis: ${e.message}` };
  }
  return { code: EXIT_FAILURE, message: `portcullis: ${(e as Error)?.message ?? String(e)}` };
}
