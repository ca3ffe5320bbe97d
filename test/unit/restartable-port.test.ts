// The test IdP and redis-server restart on the port they started on; that port must not be one
// the kernel hands out to listen(0) or outgoing connections in the meantime.
import { readFileSync } from 'node:fs';
import { createServer, type AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { restartablePort } from '../support/ports.ts';

const listen = (port: number) =>
  new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
const close = (s: ReturnType<typeof createServer>) => new Promise<void>((r) => s.close(() => r()));

describe('restartablePort', () => {
  it('is below the ephemeral range, bindable, and not handed out twice', async () => {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    const ports = await Promise.all(Array.from({ length: 20 }, () => restartablePort()));
    for (const p of ports) {
      expect(p).toBeGreaterThanOrEqual(1024);
      expect(p).toBeLessThan(low);
    }
    expect(new Set(ports).size).toBe(ports.length);
  });

  it('stays free while its server is down, however many ephemeral ports are taken meanwhile', async () => {
    const port = await restartablePort();
    await close(await listen(port));
    const others = await Promise.all(Array.from({ length: 200 }, () => listen(0)));
    expect(others.map((s) => (s.address() as AddressInfo).port)).not.toContain(port);
    await Promise.all(others.map(close));
    await close(await listen(port));
  });
});
