// Summarizes a V8 .cpuprofile (node --cpu-prof): self time by function and by package/file.
// Usage: node --import tsx bench/profile-summary.ts <file.cpuprofile> [top=30]
import { readFileSync } from 'node:fs';

interface Node {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}
const [file, topArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: profile-summary.ts <file.cpuprofile> [top]');
  process.exit(2);
}
const prof = JSON.parse(readFileSync(file, 'utf8')) as { nodes: Node[]; samples: number[]; timeDeltas: number[] };
const byId = new Map(prof.nodes.map((n) => [n.id, n]));
const self = new Map<number, number>();
for (let i = 0; i < prof.samples.length; i++)
  self.set(prof.samples[i], (self.get(prof.samples[i]) ?? 0) + (prof.timeDeltas[i] ?? 0));
// Percentages are of busy time: (idle) is left out.
const idleIds = new Set(prof.nodes.filter((n) => n.callFrame.functionName === '(idle)').map((n) => n.id));
for (const id of idleIds) self.delete(id);
const total = [...self.values()].reduce((a, b) => a + b, 0);

const group = (url: string) => {
  if (!url) return '(native/vm)';
  if (url.startsWith('evalmachine') || url === 'vm') return '(generated code)';
  const m = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (m) return m[1];
  if (url.startsWith('node:')) return url.split('/')[0];
  const s = /\/(src|bench|test)\/(.*)$/.exec(url);
  return s ? `${s[1]}/${s[2]}` : url;
};
const fn = new Map<string, number>();
const pkg = new Map<string, number>();
for (const [id, t] of self) {
  const n = byId.get(id)!;
  const g = group(n.callFrame.url);
  const name = `${n.callFrame.functionName || '(anonymous)'}  ${g}:${n.callFrame.lineNumber + 1}`;
  fn.set(name, (fn.get(name) ?? 0) + t);
  pkg.set(g, (pkg.get(g) ?? 0) + t);
}
const pct = (t: number) => ((100 * t) / total).toFixed(1).padStart(5) + '%';
const top = Number(topArg ?? 30);
console.log(`busy ${(total / 1e6).toFixed(2)} s\n\nself time by package/file:`);
for (const [k, t] of [...pkg].sort((a, b) => b[1] - a[1]).slice(0, 25)) console.log(`${pct(t)}  ${k}`);
console.log('\nself time by function:');
for (const [k, t] of [...fn].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(t)}  ${k}`);

// Inclusive time of Portcullis's own functions (async continuations included: V8 reports a
// resumed async function under its own name), counted once per sample even when nested.
const parent = new Map<number, number>();
for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
const inclusive = new Map<string, number>();
for (let i = 0; i < prof.samples.length; i++) {
  if (idleIds.has(prof.samples[i])) continue;
  const seen = new Set<string>();
  for (let id: number | undefined = prof.samples[i]; id !== undefined; id = parent.get(id)) {
    const n = byId.get(id)!;
    if (!/\/(src|dist)\//.test(n.callFrame.url)) continue;
    const name = `${n.callFrame.functionName || '(anonymous)'}  ${group(n.callFrame.url)}`;
    if (seen.has(name)) continue;
    seen.add(name);
    inclusive.set(name, (inclusive.get(name) ?? 0) + (prof.timeDeltas[i] ?? 0));
  }
}
console.log("\ninclusive time, Portcullis's functions (src/ or dist/):");
for (const [k, t] of [...inclusive].sort((a, b) => b[1] - a[1]).slice(0, top)) console.log(`${pct(t)}  ${k}`);
