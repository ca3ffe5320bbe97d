// Reads Portcullis's own decision counters, to confirm what it answered under load (h2load only
// sees HTTP 200 for every gRPC call, allowed or denied).
export type DecisionCounts = Map<string, number>;

export async function decisionCounts(httpPort: number): Promise<DecisionCounts> {
  const text = await (await fetch(`http://127.0.0.1:${httpPort}/metrics`)).text();
  const out: DecisionCounts = new Map();
  for (const line of text.split('\n')) {
    if (!line.startsWith('portcullis_decisions_total{')) continue;
    const status = /status="(\d+)"/.exec(line)?.[1] ?? '?';
    const n = Number(line.slice(line.lastIndexOf(' ') + 1));
    out.set(status, (out.get(status) ?? 0) + n);
  }
  return out;
}

/** Share of decisions between two snapshots that had `status` (200 = allowed). */
export function shareWithStatus(
  before: DecisionCounts,
  after: DecisionCounts,
  status: number,
): { total: number; share: number } {
  let total = 0;
  let match = 0;
  for (const [s, n] of after) {
    const d = n - (before.get(s) ?? 0);
    total += d;
    if (s === String(status)) match += d;
  }
  return { total, share: total ? match / total : 0 };
}
