// Lua scripts through ioredis's defineCommand: EVALSHA first, EVAL when Redis does not know the
// script yet (after a restart), so each call is one round trip in the usual case.
import type { RedisClient } from './connection.ts';

export type ScriptCall = (...keysThenArgs: Array<string | number>) => Promise<unknown>;

export function defineScript(client: RedisClient, name: string, numberOfKeys: number, lua: string): ScriptCall {
  const c = client as unknown as Record<string, ScriptCall | undefined>;
  if (typeof c[name] !== 'function') client.defineCommand(name, { numberOfKeys, lua });
  return (...args) => (c[name] as ScriptCall).apply(client, args);
}
