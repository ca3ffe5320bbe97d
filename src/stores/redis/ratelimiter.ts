// Redis rate limiter: one budget per (policy, key) shared by every replica, counted atomically by a
// Lua script in one round trip per Check.
//
// Algorithm: fixed windows aligned to the epoch, like the in-memory limiter, but on the Redis
// server's clock (TIME inside the script), so replicas with skewed clocks still agree on where a
// window starts. Exactly `limit` requests pass per window however many replicas share it; the
// price of fixed windows is that a client can spend a window's budget at the end of one window
// and again at the start of the next (up to 2 x limit within window_seconds around a boundary).
//
// Layout: P + "rl:" + policy + ":" + base64url(SHA-256(key))[0..22]: a hash {w: window start ms,
// c: count}, expiring one second after its window ends. The key (client id, subject, IP) is hashed
// so Redis holds no identifiers.
import { createHash } from 'node:crypto';
import type { RateLimiter, RateLimitPolicy, RateLimitResult } from '../ratelimit.ts';
import type { RedisConnection } from './connection.ts';
import { defineScript, type ScriptCall } from './script.ts';

// ARGV[1] = window length in ms. Returns {count in this window, ms until the window ends}.
// Lua numbers are doubles: epoch milliseconds (13 digits) are exact, and %d keeps them out of
// exponent notation.
const HIT_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local win = tonumber(ARGV[1])
local start = now - (now % win)
local c
if redis.call('HGET', KEYS[1], 'w') == string.format('%d', start) then
  c = redis.call('HINCRBY', KEYS[1], 'c', 1)
else
  redis.call('HSET', KEYS[1], 'w', string.format('%d', start), 'c', 1)
  redis.call('PEXPIREAT', KEYS[1], string.format('%d', start + win + 1000))
  c = 1
end
return {c, start + win - now}
`;

export function rateLimitRedisKey(prefix: string, policy: string, key: string): string {
  return `${prefix}rl:${policy}:${createHash('sha256').update(key).digest('base64url').slice(0, 22)}`;
}

export class RedisRateLimiter implements RateLimiter {
  private readonly script: ScriptCall;

  constructor(private readonly conn: RedisConnection) {
    this.script = defineScript(conn.client, 'portcullisRateLimitHit', 1, HIT_LUA);
  }

  /** `nowMs` is not used: the window is placed on the Redis server's clock. */
  async hit(policy: RateLimitPolicy, key: string, _nowMs: number): Promise<RateLimitResult> {
    const redisKey = rateLimitRedisKey(this.conn.prefix, policy.name, key);
    const res = (await this.conn.run('ratelimit', () => this.script(redisKey, policy.windowSeconds * 1000))) as [
      number,
      number,
    ];
    const count = Number(res[0]);
    const msLeft = Number(res[1]);
    return {
      allowed: count <= policy.limit,
      remaining: Math.max(0, policy.limit - count),
      resetSeconds: Math.max(1, Math.ceil(msLeft / 1000)),
    };
  }

  async close(): Promise<void> {
    // The connection belongs to the components and is closed there.
  }
}
