// forward_auth.trusted_proxies: which TCP peers may call the forward-auth endpoint and state the
// original request. Compiled once per config list (the schema has already validated each entry).
import { BlockList, isIPv4, isIPv6 } from 'node:net';

export class TrustedProxies {
  private readonly list = new BlockList();

  constructor(cidrs: readonly string[]) {
    for (const c of cidrs) {
      const [addr, bits] = c.split('/');
      const type = isIPv6(addr) ? 'ipv6' : 'ipv4';
      const prefix = bits === undefined ? (type === 'ipv6' ? 128 : 32) : Number(bits);
      try {
        this.list.addSubnet(addr, prefix, type);
      } catch {
        // Unreachable after schema validation; an entry that cannot be read trusts nobody.
      }
    }
  }

  /** Is this peer address (as node reports it, e.g. `::ffff:127.0.0.1`) trusted? */
  has(ip: string | undefined): boolean {
    if (!ip) return false;
    const addr = unmapIPv4(ip);
    if (isIPv4(addr)) return this.list.check(addr, 'ipv4');
    if (isIPv6(addr)) return this.list.check(addr, 'ipv6');
    return false;
  }
}

/** `::ffff:10.0.0.1` (an IPv4 peer on a dual-stack socket) is `10.0.0.1`. */
export function unmapIPv4(ip: string): string {
  return ip.startsWith('::ffff:') && isIPv4(ip.slice(7)) ? ip.slice(7) : ip;
}
