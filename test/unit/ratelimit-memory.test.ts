// The in-memory rate limiter's memory (docs/security.md, "Rate-limiter memory"): counts go with their
// window, the map is bounded and what happens at the bound, and source addresses by prefix.
import { afterEach, describe, expect, it } from 'vitest';
import { decide } from '../../src/core/decide.ts';
import type { AuthzRequest } from '../../src/core/types.ts';
import { compilePolicy } from '../../src/policy/compile.ts';
import { parseConfig } from '../../src/policy/load.ts';
import { MemoryRateLimiter, type RateLimitPolicy } from '../../src/stores/ratelimit.ts';

const limiters: MemoryRateLimiter[] = [];
const limiter = (opts?: ConstructorParameters<typeof MemoryRateLimiter>[0]) => {
  const l = new MemoryRateLimiter(opts);
  limiters.push(l);
  return l;
};
afterEach(async () => {
  for (const l of limiters.splice(0)) await l.close();
});

const T0 = Date.parse('2026-06-01T00:00:00Z'); // a window boundary for every window length used here
const policy: RateLimitPolicy = { name: 'p', limit: 3, windowSeconds: 60, maxKeys: 1000 };

describe('MemoryRateLimiter', () => {
  it("a window's keys are dropped when the window ends: by the next hit, or by the sweep when none comes", async () => {
    const l = limiter();
    for (let i = 0; i < 500; i++) await l.hit(policy, `k${i}`, T0 + 1000);
    expect(l.size).toBe(500);
    await l.hit(policy, 'k0', T0 + 60_000);
    expect(l.size).toBe(1);
    l.sweep(T0 + 119_999);
    expect(l.size).toBe(1);
    l.sweep(T0 + 120_000);
    expect(l.size).toBe(0);
  });

  it("the sweep timer drops an ended window with no further traffic, on the callers' clock", async () => {
    const l = limiter({ sweepIntervalMs: 10 });
    // 30 ms before the end of a 1 s window, on a clock far from the real one.
    for (let i = 0; i < 100; i++) await l.hit({ ...policy, windowSeconds: 1 }, `k${i}`, T0 + 970);
    expect(l.size).toBe(100);
    await new Promise((r) => setTimeout(r, 150));
    expect(l.size).toBe(0);
  });

  it('a long window is not swept early', async () => {
    const l = limiter({ sweepIntervalMs: 10 });
    await l.hit(policy, 'a', T0);
    await new Promise((r) => setTimeout(r, 60));
    expect(l.size).toBe(1);
    expect((await l.hit(policy, 'a', T0 + 100)).remaining).toBe(1);
  });

  it('at max_keys, new keys share one overflow budget; keys already counted keep their counts (a flood cannot reset them)', async () => {
    const overflowed: string[] = [];
    const l = limiter({ onOverflow: (p) => overflowed.push(p) });
    const small = { ...policy, maxKeys: 10 };
    for (let i = 0; i < 3; i++) await l.hit(small, 'victim', T0);
    expect((await l.hit(small, 'victim', T0)).allowed).toBe(false);
    // The flood: 10,000 new keys against a bound of 10.
    const results = [];
    for (let i = 0; i < 10_000; i++) results.push(await l.hit(small, `flood-${i}`, T0 + 1));
    expect(l.size).toBe(10);
    // 9 flood keys got their own slot (the victim holds one); the rest share limit 3.
    expect(results.filter((r) => r.allowed).length).toBe(9 + 3);
    expect(overflowed.length).toBe(10_000 - 9);
    expect(new Set(overflowed)).toEqual(new Set(['p']));
    expect((await l.hit(small, 'victim', T0 + 2)).allowed).toBe(false);
    expect((await l.hit(small, 'a-new-client', T0 + 2)).allowed).toBe(false);
    // The next window starts empty.
    expect((await l.hit(small, 'a-new-client', T0 + 60_000)).allowed).toBe(true);
    expect(l.size).toBe(1);
  });

  it('policies are counted apart, and a policy whose window changes (reload) starts over', async () => {
    const l = limiter();
    await l.hit(policy, 'a', T0);
    await l.hit({ ...policy, name: 'q' }, 'a', T0);
    expect(l.size).toBe(2);
    expect((await l.hit({ ...policy, windowSeconds: 30 }, 'a', T0 + 1)).remaining).toBe(2);
  });
});

describe('through decide(): source addresses as keys', () => {
  const p = compilePolicy(
    parseConfig(`
source_ip_header: x-forwarded-for
rate_limits:
  - { name: login, key: source_ip, limit: 5, window_seconds: 60 }
  - { name: login48, key: source_ip, limit: 5, window_seconds: 60, ipv6_prefix_length: 48 }
routes:
  - { name: login, match: { path: /login }, public: true, rate_limit: login }
  - { name: login48, match: { path: /login48 }, public: true, rate_limit: login48 }
`),
  );
  const req = (path: string, xff: string): AuthzRequest => ({
    method: 'POST',
    host: 'api.example.com',
    rawPath: path,
    sourceIp: '10.0.0.1',
    contextExtensions: {},
    headers: Object.assign(Object.create(null), { 'x-forwarded-for': xff }),
  });
  const hex = (i: number) => (i & 0xffff).toString(16);

  it('10,000 addresses of one /64 are one key, limited together', async () => {
    const l = limiter();
    let allowed = 0;
    for (let i = 0; i < 10_000; i++) {
      const d = await decide(req('/login', `2001:db8:1:2:${hex(i)}:${hex(i >> 3)}:1:${hex(i * 7)}`), p, {
        now: () => T0,
        verifiers: {},
        rateLimiter: l,
      });
      if (d.allowed) allowed++;
    }
    expect(allowed).toBe(5);
    expect(l.size).toBe(1);
  });

  it('ipv6_prefix_length: 48 puts a whole /48 in one budget', async () => {
    const l = limiter();
    const results = [];
    for (let i = 0; i < 8; i++)
      results.push(
        (await decide(req('/login48', `2001:db8:7:${hex(i)}::1`), p, { now: () => T0, verifiers: {}, rateLimiter: l }))
          .allowed,
      );
    expect(results).toEqual([true, true, true, true, true, false, false, false]);
    expect(l.size).toBe(1);
  });

  it('garbage X-Forwarded-For values are 400 and never become keys', async () => {
    const l = limiter();
    for (let i = 0; i < 1000; i++) {
      const d = await decide(req('/login', `garbage-${i}`), p, { now: () => T0, verifiers: {}, rateLimiter: l });
      expect(d.reason).toBe('source_ip_invalid');
    }
    expect(l.size).toBe(0);
  });
});
