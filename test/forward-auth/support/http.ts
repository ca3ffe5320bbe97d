// Small real-HTTP helpers for the forward-auth tests: a client that sends header lines exactly as
// given (repeats and case kept), an echo upstream that reports what it received, a free port.
import { createServer, request, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';

export interface HttpResult {
  status: number;
  /** Lowercased names; repeated headers as arrays. */
  headers: Record<string, string | string[] | undefined>;
  /** Raw response header lines, to count repeats. */
  rawHeaders: string[];
  body: string;
}

export function httpRequest(
  port: number,
  opts: {
    method?: string;
    path: string;
    headers?: Array<[string, string]>;
    host?: string;
    body?: string;
    localAddress?: string;
  },
): Promise<HttpResult> {
  const headers: string[] = [];
  headers.push('Host', opts.host ?? 'api.example.com');
  for (const [k, v] of opts.headers ?? []) headers.push(k, v);
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        method: opts.method ?? 'GET',
        path: opts.path,
        headers,
        agent: false,
        localAddress: opts.localAddress,
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, headers: res.headers, rawHeaders: res.rawHeaders, body }),
        );
        res.on('error', reject);
      },
    );
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error(`request to :${port}${opts.path} timed out`)));
    req.end(opts.body);
  });
}

export interface EchoSeen {
  method: string;
  url: string;
  /** Header lines as received, names lowercased. */
  headers: Array<[string, string]>;
}

/** An upstream that answers 200 with what it received, and remembers it. */
export async function startEcho(): Promise<{ port: number; seen: EchoSeen[]; close(): Promise<void>; server: Server }> {
  const seen: EchoSeen[] = [];
  const server = createServer((req, res) => {
    const headers: Array<[string, string]> = [];
    for (let i = 0; i + 1 < req.rawHeaders.length; i += 2)
      headers.push([req.rawHeaders[i].toLowerCase(), req.rawHeaders[i + 1]]);
    const entry = { method: req.method ?? '', url: req.url ?? '', headers };
    seen.push(entry);
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(entry));
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    seen,
    server,
    close: () =>
      new Promise<void>((r) => {
        server.close(() => r());
        server.closeAllConnections();
      }),
  };
}

/** All values of a header in an echo entry. */
export function seenHeader(entry: EchoSeen, name: string): string[] {
  return entry.headers.filter(([k]) => k === name).map(([, v]) => v);
}

/** A port that was free a moment ago (for servers such as nginx that cannot listen on port 0). */
export async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return port;
}

/**
 * A dependency that is down: it accepts connections and resets them at once. Unlike a port that
 * was merely free a moment ago, nothing else can start answering on it during the test.
 */
export async function startResettingServer(): Promise<{ port: number; close(): Promise<void> }> {
  const server = createNetServer((socket) => socket.resetAndDestroy());
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}
