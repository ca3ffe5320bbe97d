// The parts of vitest.config.ts (and vitest.hardening.config.ts) that deal with the machine: the
// programs the integration tests need (test/support/programs.ts) and one warning of a dependency.
import type { Reporter, TestModule } from 'vitest/node';
import { missingPrograms, requiredNotice, skipNotice, TEST_PROGRAMS } from './programs.ts';

// oidc-provider, the identity provider the tests run, prints "Unsupported runtime" when it is
// imported on a Node.js older than its supported LTS (Portcullis runs on Node 20; the tests use only
// what works there). It is imported once per test file, so the same line came a dozen times: the
// first one is shown, the repeats of that exact line are dropped.
const OIDC_RUNTIME_WARNING = 'oidc-provider WARNING: Unsupported runtime.';

export function testProgramsSetup(): {
  tags: Array<{ name: string; description: string; skip: boolean }>;
  reporter: Reporter;
  onConsoleLog: (log: string) => false | void;
} {
  const missing = missingPrograms();
  if (missing.length && process.env.PORTCULLIS_TEST_PROGRAMS === 'required') {
    console.error(requiredNotice(missing));
    process.exit(1);
  }
  for (const line of skipNotice(missing)) console.warn(line);

  let oidcWarningShown = false;
  return {
    tags: Object.entries(TEST_PROGRAMS).map(([name, p]) => ({
      name,
      description: `needs ${name} (${p.usedFor})`,
      skip: missing.includes(name),
    })),
    reporter: {
      // After the summary: which files were skipped, and the lines that say how to run them.
      onTestRunEnd(modules: ReadonlyArray<TestModule>) {
        if (!missing.length) return;
        const because = new Set<string>();
        const skipped = modules
          .filter((m) => {
            const tags = [...m.children.allTests()].flatMap((t) => t.tags).filter((tag) => missing.includes(tag));
            for (const t of tags) because.add(t);
            return tags.length > 0;
          })
          .map((m) => m.moduleId.replace(`${process.cwd()}/`, ''));
        if (!skipped.length) return;
        console.warn(`\n${skipped.length} test file(s) SKIPPED for missing programs: ${skipped.join(', ')}`);
        for (const line of skipNotice([...because])) console.warn(line);
      },
    },
    onConsoleLog(log: string) {
      if (!log.includes(OIDC_RUNTIME_WARNING)) return;
      if (oidcWarningShown) return false;
      oidcWarningShown = true;
    },
  };
}
