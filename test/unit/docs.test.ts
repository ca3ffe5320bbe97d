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
const ignoredByGit = (p: string) => spawnSync('git', ['check-ignore', '-q', '--no-index', p], { cwd: REPO }).status === 0;

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
        else if (anchor && resolved.endsWith('.md') && !anchors(resolved).has(anchor)) broken.push(`${f}: ${target} (no such heading)`);
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
      for (const m of text(f).matchAll(/(?<![\w./-])((?:docs|proto)\/[\w.-]+\.md)/g)) if (!existsSync(join(REPO, m[1]))) missing.push(`${f}: ${m[1]}`);
    }
    expect(missing).toEqual([]);
  });
});

describe('README.md', () => {
  it('stays short and in the order a newcomer needs it; the rest lives in docs/', () => {
    const readme = text('README.md');
    expect(readme.split('\n').length).toBeLessThanOrEqual(250);
    const sections = [...readme.matchAll(/^## (.+)$/gm)].map((m) => m[1]);
    expect(sections).toEqual(['The two commands', 'Try it in one minute', 'How a request is decided', 'Configuration', 'Deployment', 'Performance', 'Documentation', 'License']);
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

describe('proto/README.md', () => {
  const pkg = JSON.parse(text('package.json')) as { dependencies: Record<string, string> };
  const lock = JSON.parse(text('package-lock.json')) as { packages: Record<string, { version?: string; dependencies?: Record<string, string> }> };
  const XDS = '@grpc/grpc-js-xds';

  it('the protos come from an exactly pinned @grpc/grpc-js-xds, the version it names', () => {
    const spec = pkg.dependencies[XDS];
    expect(spec).toMatch(/^\d+\.\d+\.\d+$/); // no ^ or ~: npm install cannot move it
    expect(lock.packages[''].dependencies?.[XDS]).toBe(spec);
    expect(lock.packages[`node_modules/${XDS}`].version).toBe(spec);
    expect((JSON.parse(readFileSync(join(REPO, 'node_modules', XDS, 'package.json'), 'utf8')) as { version: string }).version).toBe(spec);
    expect(text('proto/README.md')).toContain(`pinned to exactly **${spec}**`);
  });

  it('what it says the protos contain, they contain', () => {
    const api = join(REPO, 'node_modules', XDS, 'deps/envoy-api/envoy/service/auth/v3');
    const externalAuth = readFileSync(join(api, 'external_auth.proto'), 'utf8');
    const attributes = readFileSync(join(api, 'attribute_context.proto'), 'utf8');
    expect(externalAuth).not.toMatch(/\berror_response\b/);
    for (const f of ['response_headers_to_add', 'query_parameters_to_set', 'query_parameters_to_remove', 'headers_to_remove']) expect(externalAuth).toMatch(new RegExp(`\\b${f}\\b`));
    expect(attributes).toMatch(/\bheader_map\b/);
  });
});
