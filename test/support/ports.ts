// Ports for test servers that stop and later start again on the same port (an IdP outage, a
// Redis restart). A port from listen(0) lies in the kernel's ephemeral range, and while such a
// server is down any outgoing connection or listen(0) of the parallel test files may take it:
// CI once failed with `listen EADDRINUSE` on an IdP restart. Ports below that range are only
// ever handed out on request, so a stopped server's port stays free for its restart.
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';

const handedOut = new Set<number>();

/** The first port of the kernel's ephemeral range (Linux default 32768). */
function ephemeralLow(): number {
  try {
    const low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]);
    if (Number.isInteger(low) && low > 0) return low;
  } catch {
    // Not Linux: assume the IANA dynamic range.
  }
  return 49152;
}

function bindable(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/**
 * A free port below the ephemeral range, not handed out before in this process. Other test
 * processes pick at random from some 12,000 ports, so two picking the same one is unlikely, and
 * the bind probe catches a port already in use.
 */
export async function restartablePort(): Promise<number> {
  const high = ephemeralLow() - 1;
  const low = Math.max(1024, high - 12_000);
  for (let attempt = 0; attempt < 100; attempt++) {
    const port = low + Math.floor(Math.random() * (high - low + 1));
    if (handedOut.has(port) || !(await bindable(port))) continue;
    handedOut.add(port);
    return port;
  }
  throw new Error(`no free port in ${low}-${high} after 100 tries`);
}
