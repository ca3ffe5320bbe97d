// In-process cost of route conditions and the other policy building blocks, per call, in µs of
// CPU: each figure is the median of RUNS timed batches. docs/policy.md, "Cost per Check".
// Usage: node --import tsx bench/conditions.ts [runs=7]
import { checkClaims, claimHeaderValue, parseClaimReference } from '../src/policy/claims.ts';
import {
  buildActivation,
  compileCondition,
  evaluateAll,
  type ConditionIdentityInput,
  type ConditionRequestInput,
} from '../src/policy/conditions/index.ts';
import { compileHostPattern } from '../src/policy/host-pattern.ts';
import { compilePathTemplate } from '../src/policy/path-template.ts';
import { decide } from '../src/core/decide.ts';
import type { DecideDeps } from '../src/core/deps.ts';
import { newHeaderMap } from '../src/core/header-map.ts';
import { newIdentity } from '../src/core/identity.ts';
import type { AuthzRequest } from '../src/core/types.ts';
import { compilePolicy } from '../src/policy/compile.ts';
import { parseConfig } from '../src/policy/load.ts';
import { median } from './lib/stats.ts';

const RUNS = Number(process.argv[2] ?? 7);
const BATCH_CPU_MS = 60;

const cpuUs = () => {
  const u = process.cpuUsage();
  return u.user + u.system;
};

/** µs of CPU per call: batches sized to ~BATCH_CPU_MS, the median of RUNS of them. */
function measure(fn: () => unknown): number {
  let n = 1;
  for (;;) {
    const t = cpuUs();
    for (let i = 0; i < n; i++) fn();
    if (cpuUs() - t > BATCH_CPU_MS * 100) break; // a tenth of a batch: enough to size it
    n *= 2;
  }
  n *= 10;
  const per: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t = cpuUs();
    for (let i = 0; i < n; i++) fn();
    per.push((cpuUs() - t) / n);
  }
  return median(per);
}

/** As measure(), for an async call: each batch awaits its calls one after another. */
async function measureAsync(fn: () => Promise<unknown>): Promise<number> {
  const n = 20_000;
  for (let i = 0; i < n; i++) await fn();
  const per: number[] = [];
  for (let r = 0; r < RUNS; r++) {
    const t = cpuUs();
    for (let i = 0; i < n; i++) await fn();
    per.push((cpuUs() - t) / n);
  }
  return median(per);
}

const template = compilePathTemplate('/v1/tenants/{tenant}/orders/{id}', 'bench');
const path = '/v1/tenants/acme/orders/12345';
const params = template.match(path)!;
const claims = {
  iss: 'https://idp.example.com',
  sub: 'user-123',
  client_id: 'web',
  aud: ['orders'],
  iat: 1764800000,
  exp: 1764803600,
  jti: 'a1b2c3',
  scope: 'orders:read orders:write',
  tenant: 'acme',
  tier: 'gold',
  email: 'alice@example.com',
  roles: ['reader', 'writer', 'admin'],
  realm_access: { roles: ['offline_access', 'uma_authorization'] },
};
const request: ConditionRequestInput = {
  method: 'POST',
  host: 'acme.api.example.com',
  path,
  query: 'expand=items&limit=50',
  headers: Object.assign(Object.create(null) as Record<string, string>, {
    'x-env': 'prod',
    'content-type': 'application/json',
    ':path': path,
  }),
  params,
  sourceIp: '10.1.2.3',
  contextExtensions: {},
};
const identity: ConditionIdentityInput = {
  method: 'jwt',
  subject: 'user-123',
  clientId: 'web',
  scopes: ['orders:read', 'orders:write'],
  issuer: claims.iss,
  claims,
};
const now = new Date('2026-12-07T10:30:00Z');
const act = buildActivation(request, identity, now);

const EXPRESSIONS: Array<[string, string]> = [
  ['role in a claim list', "'admin' in identity.claims.roles"],
  ['tenant: path param == claim', 'request.params.tenant == identity.claims.tenant'],
  ['methods or role', "request.method in ['GET', 'HEAD'] || 'admin' in identity.claims.roles"],
  ['has + claim compare', "has(identity.claims.tier) && identity.claims.tier == 'gold'"],
  ['header equals', "request.headers['x-env'] == 'prod'"],
  ['IP allow-list (2 ranges)', "request.source_ip.inCidr(['10.0.0.0/8', '192.168.0.0/16'])"],
  [
    'business hours (4 local-time calls)',
    "now.localDayOfWeek('Europe/Berlin') >= 1 && now.localDayOfWeek('Europe/Berlin') <= 5 && now.localHours('Europe/Berlin') >= 9 && now.localHours('Europe/Berlin') < 17",
  ],
  [
    'per-tier query limit',
    "!('limit' in request.query) || int(request.query.limit) <= (identity.claims.tier == 'gold' ? 1000 : 100)",
  ],
  ['one exists() over 3 roles', "identity.claims.roles.exists(r, r == 'admin')"],
];

const rows: Array<[string, number]> = [];
for (const [label, expr] of EXPRESSIONS) {
  const c = compileCondition(expr, 'bench');
  const r = c.evaluate(act);
  if (!r.ok || r.value !== true) throw new Error(`${label}: ${JSON.stringify(r)}`);
  rows.push([`evaluate: ${label}`, measure(() => c.evaluate(act))]);
}
rows.push([
  'compile one condition (parse, check, guard rails)',
  measure(() => compileCondition(EXPRESSIONS[2][1], 'bench')),
]);

// What the route costs per Check: template match, activation, two conditions.
const two = [compileCondition(EXPRESSIONS[1][1], 'bench'), compileCondition(EXPRESSIONS[2][1], 'bench')];
rows.push(['build the activation', measure(() => buildActivation(request, identity, now))]);
rows.push([
  'per Check: template match + activation + 2 conditions',
  measure(() => {
    const p = template.match(path, undefined, true)!;
    const r = evaluateAll(two, buildActivation({ ...request, params: p }, identity, now));
    if (!r.ok) throw new Error('denied');
  }),
]);
rows.push(['path template match (2 variables)', measure(() => template.match(path, undefined, true))]);
const host = compileHostPattern('*.api.example.com', 'bench');
rows.push(['host wildcard match', measure(() => host.matches('acme.api.example.com'))]);
rows.push(['checkClaims (a 400-byte JWT payload)', measure(() => checkClaims(claims))]);
const big: Record<string, string> = {};
for (let i = 0; i < 20_000; i++) big[`claim_${i}`] = 'x'.repeat(40);
rows.push(['checkClaims (a 1 MB claim set, refused)', measure(() => checkClaims(big))]);
const email = parseClaimReference('claims.email', 'bench');
rows.push(['claimHeaderValue (a string claim)', measure(() => claimHeaderValue(claims, email, (v) => v))]);

// The whole decide() of a Check on the route of bench/run.ts's jwt-policy scenario, against the same
// route without its template and conditions (jwt-policy-baseline): the difference is what the policy
// costs per Check, verification excluded (the identity is the cached one).
const policy = compilePolicy(
  parseConfig(`
credentials:
  jwt: [{ issuer: "${claims.iss}", audiences: [orders], jwks_file: jwks.json }]
routes:
  - { name: plain, match: { methods: [GET], path_prefix: /v1/plain }, auth: [jwt], scopes: [orders:read] }
  - name: tenant-orders
    match: { methods: [GET], path_template: "/v1/tenants/{tenant}/orders/{id}" }
    auth: [jwt]
    scopes: [orders:read]
    when:
      - "request.params.tenant == identity.claims.tenant"
      - "request.method in ['GET', 'HEAD'] || 'admin' in identity.claims.roles"
`),
);
const { bound: _bound, ...fields } = identity;
const cached = newIdentity('jwt', { ...fields, claims });
const decideDeps: DecideDeps = { now: () => Date.now(), verifiers: { jwt: { verify: () => Promise.resolve(cached) } } };
const checkOf = (rawPath: string): AuthzRequest => ({
  method: 'GET',
  host: 'api.example.com',
  rawPath,
  headers: Object.assign(newHeaderMap(), { ':path': rawPath, authorization: 'Bearer eyJ.a.b', 'x-request-id': 'r' }),
  sourceIp: '10.1.2.3',
  contextExtensions: {},
});
const withPolicy = checkOf('/v1/tenants/acme/orders/12345?expand=items');
const without = checkOf('/v1/plain/acme/orders/12345?expand=items');
for (const r of [withPolicy, without]) {
  const d = await decide(r, policy, decideDeps);
  if (!d.allowed) throw new Error(`decide: ${d.reason}`);
}
const decideUs = (r: AuthzRequest) => measureAsync(() => decide(r, policy, decideDeps));
const [a, b] = [await decideUs(withPolicy), await decideUs(without)];
rows.push(['decide(): route with template + 2 conditions', a]);
rows.push(['decide(): the same route without them', b]);
rows.push(['  difference: the policy per Check', a - b]);

const width = Math.max(...rows.map(([l]) => l.length));
for (const [label, us] of rows)
  console.log(`${label.padEnd(width)}  ${Math.abs(us) < 10 ? us.toFixed(2) : us.toFixed(1)} µs`);
console.log(`(median of ${RUNS} batches of CPU time each; Node ${process.version})`);
