// @module-tag git
// Everything the repository says can be checked inside it: no tracked file cites a document that is
// not in the repository (a design note, a reference file, "§4.10" of something unnamed), every
// relative link and every repository path the docs name exists, and proto/README.md's statements
// about the protos hold (the exact pin, what the protos contain).
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, normalize, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const REPO = process.cwd();
const SELF = relative(REPO, fileURLToPath(import.meta.url));
const tracked = execFileSync('git', ['ls-files', '-z'], { cwd: REPO, encoding: 'utf8' })
  .split('\0')
  .filter((f) => f && existsSync(join(REPO, f)));
const text = (f: string) => readFileSync(join(REPO, f), 'utf8');
const textFiles = tracked.filter((f) => !/\.(png|jpg|ico|gz)$/.test(f) && f !== SELF && f !== 'package-lock.json');
const markdown = tracked.filter((f) => f.endsWith('.md'));

/** Paths git ignores (made at run time, e.g. examples/keys.yaml): docs may name them. */
const ignoredByGit = (p: string) =>
  spawnSync('git', ['check-ignore', '-q', '--no-index', p], { cwd: REPO }).status === 0;

describe('nothing cites a file outside the repository', () => {
  it('no design note, reference file or path outside the checkout is named', () => {
    // The names are built from parts so that this file does not match itself.
    const outside = [`DESIGN${'.md'}`, `shared/${'reference'}`, `envoy-ext-authz${'.md'}`, `reference ${'§'}`];
    const hits: string[] = [];
    for (const f of textFiles) {
      text(f)
        .split('\n')
        .forEach((line, i) => {
          for (const o of outside) if (line.includes(o)) hits.push(`${f}:${i + 1}: ${o}`);
          // A document named by a relative path that climbs out of the checkout.
          for (const m of line.matchAll(/(?<![\w.])(?:\.\.\/)+[\w][\w./-]*\.(?:md|rst|txt|html|pdf)\b/g)) {
            if (relative(REPO, join(REPO, dirname(f), m[0])).startsWith('..')) hits.push(`${f}:${i + 1}: ${m[0]}`);
          }
        });
    }
    expect(hits).toEqual([]);
  });

  it('every § names the public document it is a section of (an RFC, OIDC Core, OIDC Discovery)', () => {
    const named = /(?:RFC \d{3,5}|OIDC (?:Core|Discovery))(?:,? §[\d.]+(?:[-–][\d.]+)?)*,? $/;
    const hits: string[] = [];
    for (const f of textFiles) {
      text(f)
        .split('\n')
        .forEach((line, i) => {
          for (let at = line.indexOf('§'); at >= 0; at = line.indexOf('§', at + 1)) {
            if (!named.test(line.slice(0, at))) hits.push(`${f}:${i + 1}: ${line.trim().slice(0, 120)}`);
          }
        });
    }
    expect(hits).toEqual([]);
  });
});

/** GitHub's heading anchors of a Markdown file. */
function anchors(file: string): Set<string> {
  const out = new Set<string>();
  const seen = new Map<string, number>();
  let fence = false;
  for (const line of text(file).split('\n')) {
    if (line.startsWith('```')) fence = !fence;
    const m = !fence && /^#{1,6}\s+(.*)$/.exec(line);
    if (!m) continue;
    const base = m[1]
      .trim()
      .toLowerCase()
      .replace(/[^\p{L}\p{N}\s_-]/gu, '')
      .replace(/\s/g, '-');
    const n = seen.get(base) ?? 0;
    seen.set(base, n + 1);
    out.add(n ? `${base}-${n}` : base);
  }
  return out;
}

describe('links and paths in the docs', () => {
  it('every relative link in a Markdown file points at a file (and heading) that exists in the repository', () => {
    const broken: string[] = [];
    for (const f of markdown) {
      const body = text(f).replace(/```[\s\S]*?```/g, '');
      for (const m of body.matchAll(/\]\(([^)\s]+)\)/g)) {
        const target = m[1];
        if (/^(https?:|mailto:)/.test(target)) continue;
        const [path, anchor] = target.split('#');
        const resolved = path ? normalize(join(dirname(f), path)) : f;
        if (resolved.startsWith('..')) broken.push(`${f}: ${target} (outside the repository)`);
        else if (!existsSync(join(REPO, resolved))) broken.push(`${f}: ${target} (no such file)`);
        else if (anchor && resolved.endsWith('.md') && !anchors(resolved).has(anchor))
          broken.push(`${f}: ${target} (no such heading)`);
      }
    }
    expect(broken).toEqual([]);
  });

  it('every repository path a Markdown file names in backticks exists (or is one git ignores: made at run time)', () => {
    const top = '(?:src|test|docs|deploy|envoy|examples|bench|scripts|schema|proto|bin|\\.ci)';
    const missing: string[] = [];
    for (const f of markdown) {
      for (const m of text(f).matchAll(new RegExp(`\`(${top}/[\\w./-]*)\``, 'g'))) {
        const p = m[1].replace(/\/$/, '');
        if (!existsSync(join(REPO, p)) && !ignoredByGit(p)) missing.push(`${f}: ${m[1]}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it('every docs/ or proto/ page that source, config or test comments point to exists', () => {
    const missing: string[] = [];
    for (const f of textFiles.filter((x) => !x.endsWith('.md'))) {
      for (const m of text(f).matchAll(/(?<![\w./-])((?:docs|proto)\/[\w.-]+\.md)/g))
        if (!existsSync(join(REPO, m[1]))) missing.push(`${f}: ${m[1]}`);
    }
    expect(missing).toEqual([]);
  });
});

describe('README.md', () => {
  it('stays short and in the order a newcomer needs it; the rest lives in docs/', () => {
    const readme = text('README.md');
    expect(readme.split('\n').length).toBeLessThanOrEqual(250);
    const sections = [...readme.matchAll(/^## (.+)$/gm)].map((m) => m[1]);
    expect(sections).toEqual([
      'The two commands',
      'Try it in one minute',
      'How a request is decided',
      'Configuration',
      'Deployment',
      'Performance',
      'Documentation',
      'License',
    ]);
    // What it is comes first, before any section.
    expect(readme.slice(0, readme.indexOf('\n## '))).toMatch(/ext_authz/);
    // Performance is a summary: one table, a pointer to the full method and figures.
    const perf = readme.slice(readme.indexOf('## Performance'), readme.indexOf('## Documentation'));
    expect(perf.split('\n').length).toBeLessThanOrEqual(25);
    expect(perf).toContain('(docs/performance.md)');
    // Every page in docs/ is listed.
    for (const f of tracked.filter((x) => /^docs\/[^/]+\.md$/.test(x))) expect(readme).toContain(`(${f})`);
  });
});

/** The text of a Markdown file's `## heading` section, up to the next `## ` heading. */
function section(markdown: string, heading: string): string {
  const at = markdown.indexOf(`\n## ${heading}\n`);
  expect(at, `## ${heading}`).toBeGreaterThanOrEqual(0);
  const next = markdown.indexOf('\n## ', at + 1);
  return markdown.slice(at, next < 0 ? undefined : next);
}

describe('docs/performance.md', () => {
  const perf = text('docs/performance.md');

  it('keeps the method, the latest full run, start-up time and the stage table; the run history lives in CHANGELOG.md', () => {
    const sections = [...perf.matchAll(/^## (.+)$/gm)].map((m) => m[1]);
    expect(sections).toEqual([
      'Running it',
      'What is measured, and how',
      'The latest full run',
      'Start-up time',
      'Where the time goes',
      'Workers or replicas',
      'Tuning notes',
    ]);
    // One run, not a log of them: no dated sub-headings, and one dated run in the results.
    expect(perf).not.toMatch(/^#{2,4} .*\b20\d\d-\d\d-\d\d/m);
    expect(section(perf, 'The latest full run').match(/\b20\d\d-\d\d-\d\d \d\d:\d\d UTC/g)).toHaveLength(1);
    expect(section(perf, 'Where the time goes')).toMatch(/^\| B answers a fixed OK after … \|/m);
    expect(perf.split('\n').length).toBeLessThanOrEqual(500);
    expect(perf).toContain('(../CHANGELOG.md)');
    expect(section(text('CHANGELOG.md'), '[0.1.0] - 2026-12-02')).toContain('\n### Performance\n');
  });

  it("the README's performance summary is the latest full run's, and its start-up figure the compiled median", () => {
    const readme = section(text('README.md'), 'Performance');
    const latest = section(perf, 'The latest full run');
    // The same run: "2 Dec 2026 07:38 UTC" in the README, "2026-12-02 07:38 UTC" in the page.
    const [, day, month, year, time] = /The latest full run \((\d+) (\w+) (\d{4}) (\d\d:\d\d) UTC/.exec(readme)!;
    const mm = String(
      ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'].indexOf(month) + 1,
    ).padStart(2, '0');
    expect(latest).toContain(`${year}-${mm}-${day.padStart(2, '0')} ${time} UTC`);
    // Every figure of the summary table is a bold figure of that run's section.
    const rows = [...readme.matchAll(/^\| (.+?) \| (.+?) \|$/gm)].filter(
      (m) => !/^(target|---)/.test(m[1]) && !m[1].includes('ready'),
    );
    expect(rows.length).toBeGreaterThanOrEqual(6);
    for (const [, row, result] of rows) {
      const figure = /[−+-]?\d+(?:\.\d+)?(?: ms|%|×)?/.exec(result.replace(/\*/g, ''))![0];
      expect(latest, `${row}: ${figure}`).toContain(`**${figure}`);
    }
    // Start-up: the README's seconds are the compiled median of the start-up table, rounded.
    const seconds = Number(/ready.*\| (\d+\.\d+) s \|$/m.exec(readme)![1]);
    const median = Number(
      /^\| `dist\/`.*?\| \*\*([\d,]+) ms\*\* \|/m.exec(section(perf, 'Start-up time'))![1].replace(',', ''),
    );
    expect(seconds).toBe(Math.round(median / 10) / 100);
  });
});

describe('comments in bench/ and scripts/', () => {
  it('say why without readings that go stale (ratios, µs figures, dated runs belong in docs/performance.md)', () => {
    const reading = /\b\d\.\d+ ?[x×]|\d ?µs\b|\b20\d\d-\d\d-\d\d\b|\b\d\d:\d\d UTC\b/;
    const hits: string[] = [];
    for (const f of tracked.filter((x) => /^(bench|scripts)\/.*\.ts$/.test(x))) {
      text(f)
        .split('\n')
        .forEach((line, i) => {
          if (/^\s*(\/\/|\/?\*)/.test(line) && reading.test(line)) hits.push(`${f}:${i + 1}: ${line.trim()}`);
        });
    }
    expect(hits).toEqual([]);
  });
});

describe('proto/README.md', () => {
  const pkg = JSON.parse(text('package.json')) as { dependencies: Record<string, string> };
  const lock = JSON.parse(text('package-lock.json')) as {
    packages: Record<string, { version?: string; dependencies?: Record<string, string> }>;
  };
  const XDS = '@grpc/grpc-js-xds';

  it('the protos come from an exactly pinned @grpc/grpc-js-xds, the version it names', () => {
    const spec = pkg.dependencies[XDS];
    expect(spec).toMatch(/^\d+\.\d+\.\d+$/); // no ^ or ~: npm install cannot move it
    expect(lock.packages[''].dependencies?.[XDS]).toBe(spec);
    expect(lock.packages[`node_modules/${XDS}`].version).toBe(spec);
    expect(
      (JSON.parse(readFileSync(join(REPO, 'node_modules', XDS, 'package.json'), 'utf8')) as { version: string })
        .version,
    ).toBe(spec);
    expect(text('proto/README.md')).toContain(`pinned to exactly **${spec}**`);
  });

  it('what it says the protos contain, they contain', () => {
    const api = join(REPO, 'node_modules', XDS, 'deps/envoy-api/envoy/service/auth/v3');
    const externalAuth = readFileSync(join(api, 'external_auth.proto'), 'utf8');
    const attributes = readFileSync(join(api, 'attribute_context.proto'), 'utf8');
    expect(externalAuth).not.toMatch(/\berror_response\b/);
    for (const f of [
      'response_headers_to_add',
      'query_parameters_to_set',
      'query_parameters_to_remove',
      'headers_to_remove',
    ])
      expect(externalAuth).toMatch(new RegExp(`\\b${f}\\b`));
    expect(attributes).toMatch(/\bheader_map\b/);
  });
});
