// `match.host`: an exact host, or `*.example.com`, which matches exactly one label on the left:
// `a.example.com`, not `example.com` and not `a.b.example.com` (as a TLS certificate's wildcard,
// RFC 6125 §6.4.3). Both sides are canonical hosts (normalizeHost): lower case, no port, no trailing dot.
import { isIPv4 } from 'node:net';
import { normalizeHost } from '../core/host.ts';
import { PolicyConfigError } from './config-error.ts';

export interface HostPattern {
  readonly source: string;
  /** `host` must be canonical (normalizeHost). */
  matches(host: string): boolean;
}

/** Compiles `match.host`, or throws a PolicyConfigError naming `where` (e.g. `routes[3].match.host`). */
export function compileHostPattern(pattern: string, where: string): HostPattern {
  const fail = (detail: string): never => {
    throw new PolicyConfigError(where, detail);
  };
  if (typeof pattern !== 'string' || pattern === '') fail('a host is a name, an IP address or *.name');
  const wildcard = pattern.startsWith('*.');
  const name = wildcard ? pattern.slice(2) : pattern;
  if (name.includes('*')) fail(`"${pattern}": * stands only for the whole leftmost label, as in *.example.com`);
  if ((name.startsWith('[') ? name.slice(name.indexOf(']') + 1) : name).includes(':'))
    fail(`"${pattern}": no port; the request's port is ignored when matching`);
  const canonical = normalizeHost(name);
  if (canonical === undefined) fail(`"${pattern}" is not a host name or IP address (no port, userinfo or path)`);
  if (!wildcard) return { source: pattern, matches: (host) => host === canonical };
  if (canonical!.startsWith('[') || isIPv4(canonical!))
    fail(`"${pattern}": a wildcard stands for a label of a name, not part of an IP address`);
  const suffix = `.${canonical}`;
  return {
    source: pattern,
    // One label: the host's first dot is where the suffix starts (a canonical host has no empty label).
    matches: (host) =>
      host.length > suffix.length && host.endsWith(suffix) && host.indexOf('.') === host.length - suffix.length,
  };
}
