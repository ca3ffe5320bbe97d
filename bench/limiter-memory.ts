// The in-memory rate limiter's memory under many source addresses, in-process through decide():
// N requests, each from another IPv6 address, to a route limited per source IP (60 s window), then
// the heap after the window has ended. Scenarios: `one-64` (every address in one /64, the issue's
// case) and `many-64` (every address in its own /64: N distinct keys, which only expiry and the
// max_keys bound can keep in check).
//
//   node --expose-gc --import tsx bench/limiter-memory.ts [one-64|many-64] [N]
//
// Prints one JSON line: heap used (MB, after a full GC) before, right after the requests, and 5 s
// after the last request's window ended; plus the keys the limiter held at those points.
import { decide } from '../src/core/decide.ts';
import type { AuthzRequest } from '../src/core/types.ts';
import { createKey } from '../src/credentials/api-key/admin.ts';
import { ApiKeyVerifier } from '../src/credentials/api-key/verifier.ts';
import { compilePolicy } from '../src/policy/compile.ts';
import { parseConfig } from '../src/policy/load.ts';
import { MemoryKeyStore } from '../src/stores/memory-keystore.ts';
import { MemoryRateLimiter } from '../src/stores/ratelimit.ts';

const scenario = process.argv[2] ?? 'one-64';
const n = Number(process.argv[3] ?? 150_000);
const WINDOW_SECONDS = 60;
const gc = (globalThis as { gc?: () => void }).gc;
if (!gc) throw new Error('run with node --expose-gc');

// A config both the current and earlier versions accept: a protected route limited per source IP.
const policy = compilePolicy(
  parseConfig(`
source_ip_header: x-forwarded-for
credentials:
  api_key: { headers: [x-api-key], store: { type: memory } }
rate_limits:
  - { name: per-ip, key: source_ip, limit: 10, window_seconds: ${WINDOW_SECONDS} }
routes:
  - { name: limited, match: { path_prefix: /v1 }, auth: [api-key], rate_limit: per-ip }
`),
);

const heapMb = () => {
  gc();
  gc();
  return Math.round((process.memoryUsage().heapUsed / 1048576) * 10) / 10;
};
const keysHeld = (l: MemoryRateLimiter): number | undefined => {
  const o = l as unknown as { size?: number; windows?: Map<unknown, unknown> };
  return typeof o.size === 'number' ? o.size : o.windows?.size;
};
const hex = (v: number) => (v & 0xffff).toString(16);
const address = (i: number) =>
  scenario === 'one-64'
    ? `2001:db8:1:2:${hex(i >>> 16)}:${hex(i)}:${hex(i * 7)}:1`
    : `2001:db8:${hex(i >>> 16)}:${hex(i)}::1`;

const store = new MemoryKeyStore();
const key = (await createKey(store, 'pcl', { clientId: 'bench' })).key;
const limiter = new MemoryRateLimiter();
const deps = {
  now: Date.now,
  verifiers: { 'api-key': new ApiKeyVerifier('pcl', store, Date.now) },
  rateLimiter: limiter,
};

const before = heapMb();
let lastNow = 0;
let allowed = 0;
for (let i = 0; i < n; i++) {
  const req: AuthzRequest = {
    method: 'GET',
    host: 'api.example.com',
    rawPath: '/v1/items',
    sourceIp: '10.0.0.1',
    contextExtensions: {},
    headers: Object.assign(Object.create(null), { 'x-api-key': key, 'x-forwarded-for': address(i) }),
  };
  lastNow = Date.now();
  if ((await decide(req, policy, deps)).allowed) allowed++;
}
const afterRequests = heapMb();
const heldAfterRequests = keysHeld(limiter);
const windowEnd = lastNow - (lastNow % (WINDOW_SECONDS * 1000)) + WINDOW_SECONDS * 1000;
await new Promise((r) => setTimeout(r, windowEnd + 5000 - Date.now()));
const afterWindow = heapMb();
console.log(
  JSON.stringify({
    scenario,
    requests: n,
    allowed,
    heap_mb: { before, after_requests: afterRequests, five_s_after_window: afterWindow },
    held_mb_after_window: Math.round((afterWindow - before) * 10) / 10,
    keys: { after_requests: heldAfterRequests, five_s_after_window: keysHeld(limiter) },
  }),
);
process.exit(0);
