// The command line's promise (README, `portcullis --help`): exit 0 success (check: allowed), 1 check
// denied or a failure at run time, 2 usage or config error. Every command, including ones added later:
// the list of commands is read from the help output itself.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { runCli } from '../support/cli.ts';

const CONFIG = 'examples/portcullis.yaml';

/** Subcommand names listed under "Commands:" in a help text (without `help`). */
function commandsIn(help: string): string[] {
  const section = help.split(/^Commands:$/m)[1] ?? '';
  return [...section.matchAll(/^ {2}([a-z][\w-]*)/gm)].map((m) => m[1]).filter((n) => n !== 'help');
}

/** Every leaf command, as its argv prefix (e.g. ['keys', 'create']). */
async function leafCommands(prefix: string[] = []): Promise<string[][]> {
  const help = await runCli([...prefix, '--help']);
  expect(help.code).toBe(0);
  const subs = commandsIn(help.stdout);
  if (!subs.length) return [prefix];
  const out: string[][] = [];
  for (const s of subs) out.push(...(await leafCommands([...prefix, s])));
  return out;
}

describe('exit codes and flags', () => {
  it('an unknown option is a usage error (exit 2) naming that option, for every command', async () => {
    const leaves = await leafCommands();
    expect(leaves.map((l) => l.join(' '))).toEqual(
      expect.arrayContaining(['serve', 'check', 'keys create', 'keys list', 'config check']),
    );
    const results = await Promise.all(leaves.map((l) => runCli([...l, '--no-such-flag', 'x', '-c', CONFIG])));
    results.forEach((r, i) => {
      expect({ command: leaves[i].join(' '), code: r.code }).toEqual({ command: leaves[i].join(' '), code: 2 });
      expect(r.stderr).toContain("unknown option '--no-such-flag'");
      expect(r.stderr).not.toMatch(/\n\s+at /);
    });
  });

  it('a missing required option or argument is exit 2, for every command that has one', async () => {
    const cases = [
      ['check', '-c', CONFIG],
      ['check', '--path', '/v1/orders'],
      ['serve'],
      ['keys', 'create', '-c', CONFIG],
      ['keys', 'list'],
      ['keys', 'revoke', '-c', CONFIG],
      ['config', 'check'],
    ];
    const results = await Promise.all(cases.map((c) => runCli(c, { PORTCULLIS_CONFIG: '' })));
    results.forEach((r, i) =>
      expect({ argv: cases[i].join(' '), code: r.code, stderr: r.stderr }).toMatchObject({
        code: 2,
        stderr: expect.stringMatching(/required option|missing required argument/),
      }),
    );
  });

  it('check --pth names the unknown option, not the missing --path', async () => {
    const r = await runCli(['check', '-c', CONFIG, '--pth', '/v1']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("unknown option '--pth'");
    expect(r.stderr).not.toContain("--path <path>' not specified");
  });

  it('an unknown command, or a group without its subcommand, is exit 2', async () => {
    for (const argv of [['nope'], ['keys', 'nope'], ['keys'], []]) {
      const r = await runCli(argv);
      expect({ argv, code: r.code }).toEqual({ argv, code: 2 });
    }
  });

  it('bad values the parser cannot see are exit 2 too (a malformed -H, a bad duration)', async () => {
    const h = await runCli(['check', '-c', CONFIG, '--path', '/v1', '-H', 'no-colon']);
    expect(h.code).toBe(2);
    expect(h.stderr).toContain("must look like 'name: value'");
    const w = await runCli(['serve', '-c', CONFIG, '--workers', 'many']);
    expect(w.code).toBe(2);
  });

  it("--version prints package.json's version; --help exits 0", async () => {
    const { version } = JSON.parse(readFileSync('package.json', 'utf8')) as { version: string };
    const v = await runCli(['--version']);
    expect(v).toMatchObject({ code: 0, stdout: `${version}\n` });
    expect((await runCli(['-V'])).stdout).toBe(`${version}\n`);
    const help = await runCli(['--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('2 usage or config error');
  });
});
