// deploy/grafana/portcullis-dashboard.json queries only metrics Portcullis exports, and every
// portcullis_* metric the code registers has a panel (add one when you add a metric).
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { Metrics } from '../../src/runtime/metrics.ts';
import { REPO, type Json } from './support/envoy-config.ts';

const dashboard = JSON.parse(readFileSync(`${REPO}deploy/grafana/portcullis-dashboard.json`, 'utf8'));

/** Every portcullis_* metric name registered anywhere under src/ (string literals passed as `name`). */
function definedMetrics(): Set<string> {
  const names = new Set<string>();
  const walk = (d: string) => {
    for (const f of readdirSync(d)) {
      const p = join(d, f);
      if (statSync(p).isDirectory()) walk(p);
      else if (p.endsWith('.ts'))
        for (const m of readFileSync(p, 'utf8').matchAll(/['"`](portcullis_[a-z0-9_]+)['"`]/g)) names.add(m[1]);
    }
  };
  walk(`${REPO}src`);
  return names;
}

function exprs(): { panel: string; expr: string }[] {
  const out: { panel: string; expr: string }[] = [];
  for (const p of dashboard.panels) for (const t of p.targets ?? []) out.push({ panel: p.title, expr: t.expr });
  for (const a of dashboard.annotations.list) if (a.expr) out.push({ panel: `annotation ${a.name}`, expr: a.expr });
  return out;
}

const HISTOGRAM_SUFFIX = /_(bucket|sum|count)$/;

describe('Grafana dashboard', () => {
  it('is a well-formed dashboard: unique panel ids, every query panel on the datasource variable, grid inside 24 columns', () => {
    expect(dashboard.uid).toBe('portcullis-overview');
    const ids = dashboard.panels.map((p: Json) => p.id);
    expect(new Set(ids).size).toBe(ids.length);
    for (const p of dashboard.panels) {
      expect(p.gridPos.x + p.gridPos.w, p.title).toBeLessThanOrEqual(24);
      if (p.type === 'row') continue;
      expect(p.datasource, p.title).toEqual({ type: 'prometheus', uid: '${datasource}' });
      expect(p.targets.length, p.title).toBeGreaterThan(0);
    }
  });

  it('queries only metrics that exist', () => {
    const defaults = new Set(new Metrics().registry.getMetricsAsArray().map((m) => m.name));
    const known = new Set([...definedMetrics(), ...defaults]);
    const unknown: string[] = [];
    for (const { panel, expr } of exprs()) {
      // Brackets balance (a cheap syntax check) and every series selector filters on $job.
      for (const [o, c] of ['()', '{}', '[]'])
        expect(expr.split(o).length, `${panel}: ${expr}`).toBe(expr.split(c).length);
      for (const m of expr.matchAll(/\b(portcullis_[a-z0-9_]+)(\{[^}]*\})?/g)) {
        const name = m[1];
        if (!known.has(name) && !known.has(name.replace(HISTOGRAM_SUFFIX, ''))) unknown.push(`${panel}: ${name}`);
        expect(m[2] ?? '', `${panel}: ${name} must filter on $job`).toContain('job=~"$job"');
      }
    }
    expect(unknown).toEqual([]);
  });

  it('shows every portcullis_* metric the code defines', () => {
    const used = new Set(
      exprs().flatMap(({ expr }) =>
        [...expr.matchAll(/\b(portcullis_[a-z0-9_]+)/g)].map((m) => m[1].replace(HISTOGRAM_SUFFIX, '')),
      ),
    );
    const missing = [...definedMetrics()].filter((m) => !used.has(m) && !used.has(`${m}_bucket`));
    expect(missing, 'add a panel for each new metric to deploy/grafana/portcullis-dashboard.json').toEqual([]);
  });
});

describe('docs/operations.md alert rules', () => {
  const doc = readFileSync(`${REPO}docs/operations.md`, 'utf8');
  const block = [...doc.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]).find((b) => b.startsWith('groups:'))!;

  it('are well-formed rules on metrics that exist', async () => {
    const { parse } = await import('yaml');
    const rules = parse(block).groups.flatMap((g: Json) => g.rules) as Json[];
    expect(rules.length).toBeGreaterThanOrEqual(10);
    const known = new Set([...definedMetrics(), ...new Metrics().registry.getMetricsAsArray().map((m) => m.name)]);
    const unknown: string[] = [];
    for (const r of rules) {
      expect(r.alert, JSON.stringify(r)).toMatch(/^Portcullis[A-Za-z]+$/);
      expect(['page', 'ticket', 'info']).toContain(r.labels.severity);
      expect(r.annotations.summary).toBeTruthy();
      for (const [o, c] of ['()', '{}', '[]']) expect(r.expr.split(o).length, r.alert).toBe(r.expr.split(c).length);
      for (const m of String(r.expr).matchAll(/\b(portcullis_[a-z0-9_]+)/g)) {
        if (!known.has(m[1]) && !known.has(m[1].replace(HISTOGRAM_SUFFIX, ''))) unknown.push(`${r.alert}: ${m[1]}`);
      }
    }
    expect(unknown).toEqual([]);
  });
});
