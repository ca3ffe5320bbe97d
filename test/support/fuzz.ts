// Seeded random and mutated CheckRequests for fuzzing the gRPC surface. Deterministic per seed,
// so a failure prints the seed and case index that reproduce it.

export function prng(seed: number): () => number {
  // mulberry32
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export class Gen {
  constructor(readonly rand: () => number) {}
  int(n: number): number {
    return Math.floor(this.rand() * n);
  }
  pick<T>(xs: readonly T[]): T {
    return xs[this.int(xs.length)];
  }
  chance(p: number): boolean {
    return this.rand() < p;
  }
  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = this.int(256);
    return b;
  }
  ascii(
    n: number,
    alphabet = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-._~%/\\;:@!$&\'()*+,=?#[] \t"<>',
  ): string {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[this.int(alphabet.length)];
    return s;
  }
}

const PATH_PIECES = [
  'v1',
  'orders',
  'public',
  'reports',
  '..',
  '.',
  '%2e%2e',
  '%2F',
  '%5C',
  '%00',
  '%25',
  '%6F',
  '',
  ';x=1',
  'a b',
  '\\',
  '?',
  '#',
  '%zz',
  'ORDERS',
  'admin',
  '7',
  '%2e',
  '~',
];
const METHODS = [
  'GET',
  'POST',
  'PUT',
  'PATCH',
  'DELETE',
  'HEAD',
  'OPTIONS',
  'CONNECT',
  'TRACE',
  'get',
  'G ET',
  '',
  'X'.repeat(200),
  'PROPFIND',
];
const HEADER_NAMES = [
  'authorization',
  'Authorization',
  'x-api-key',
  'X-API-KEY',
  'x-user-id',
  'X-User-Id',
  'x_user_id',
  'x-scopes',
  'x-auth-method',
  'x-auth-foo',
  'x-client-id',
  'cookie',
  'x-http-method-override',
  'x-forwarded-for',
  'x-envoy-external-address',
  ':path',
  ':method',
  ':authority',
  'host',
  '__proto__',
  'constructor',
  'x-request-id',
  '',
];

export function randomPath(g: Gen): string {
  if (g.chance(0.05)) return g.ascii(g.int(300));
  const n = 1 + g.int(8);
  let p = '';
  for (let i = 0; i < n; i++) p += (g.chance(0.05) ? '//' : '/') + g.pick(PATH_PIECES);
  if (g.chance(0.2)) p += '?' + g.pick(['api_key=x', 'a=1&b=2', '%zz', 'x=/public', '']);
  if (g.chance(0.03)) p = p.slice(1);
  return p;
}

export function randomHeaderValue(g: Gen, validKey: string): string {
  switch (g.int(10)) {
    case 0:
      return validKey;
    case 1:
      return `Bearer ${validKey}`;
    case 2:
      return `ApiKey ${validKey}`;
    case 3:
      return `Bearer ${g.ascii(g.int(60), 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.')}`;
    case 4:
      return 'Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJhZG1pbiJ9.';
    case 5:
      return g.ascii(g.int(20000) + 1);
    case 6:
      return validKey.slice(0, -1) + g.pick(['A', 'b', '0']);
    case 7:
      return `${validKey},${validKey}`;
    case 8:
      return '';
    default:
      return g.ascii(g.int(80));
  }
}

const VALID_PATHS = [
  '/v1/orders',
  '/v1/orders/7',
  '/v1/orders/7?page=2',
  '/public/docs',
  '/v1/reports/q1',
  '/public',
  '/v1/orders/',
];

/** A valid, allowed request with 1-3 mutations: most land near the boundary between allow and deny. */
function mutatedValid(g: Gen, validKey: string): Array<[string, string | Buffer]> & { path?: string; method?: string } {
  const lines: Array<[string, string | Buffer]> & { path?: string; method?: string } = [
    ['x-api-key', validKey],
    [g.pick(['X-User-Id', 'x-user-id', 'x_user_id', 'X-Scopes', 'x-auth-admin']), g.pick(['admin', 'root', 'evil'])],
  ];
  lines.path = g.pick(VALID_PATHS);
  lines.method = g.pick(['GET', 'GET', 'HEAD', 'POST']);
  for (let m = 1 + g.int(3); m > 0; m--) {
    switch (g.int(8)) {
      case 0:
        lines.path = lines.path.replace(/\/[^/?]*/, '/' + g.pick(PATH_PIECES));
        break;
      case 1:
        lines.push([g.pick(HEADER_NAMES), randomHeaderValue(g, validKey)]);
        break;
      case 2:
        lines[0] = [
          g.pick(['X-API-Key', 'authorization', 'x_api_key', 'x-api-key']),
          g.pick([validKey, `Bearer ${validKey}`, `ApiKey ${validKey}`, ` ${validKey} `]),
        ];
        break;
      case 3:
        lines.push(['X-User-ID', g.pick(['admin', 'root'])], ['x-user-id', 'evil']);
        break;
      case 4:
        lines.method = g.pick(METHODS);
        break;
      case 5:
        lines[0] = ['x-api-key', randomHeaderValue(g, validKey)];
        break;
      case 6:
        lines.push(['x-api-key', validKey]);
        break;
      default:
        lines.push([g.pick(HEADER_NAMES), g.bytes(g.int(32))]);
    }
  }
  return lines;
}

/** A CheckRequest-shaped object, often broken; raw header bytes sometimes binary. */
export function randomCheckRequest(g: Gen, validKey: string): { req: unknown; carriesKey: boolean } {
  if (g.chance(0.5)) return build(g, validKey, mutatedValid(g, validKey));
  if (g.chance(0.03))
    return {
      req: g.pick([{}, { attributes: {} }, { attributes: { request: {} } }, { attributes: { request: { http: {} } } }]),
      carriesKey: false,
    };
  const lines: Array<[string, string | Buffer]> & { path?: string; method?: string } = [];
  lines.path = randomPath(g);
  lines.method = g.pick(METHODS);
  const n = g.int(8);
  for (let i = 0; i < n; i++) {
    const name = g.chance(0.9) ? g.pick(HEADER_NAMES) : g.ascii(g.int(30));
    lines.push([name, g.chance(0.05) ? g.bytes(g.int(64)) : randomHeaderValue(g, validKey)]);
  }
  if (g.chance(0.02)) for (let i = 0; i < 3000; i++) lines.push([`x-${i}`, 'v']);
  return build(g, validKey, lines);
}

function build(
  g: Gen,
  validKey: string,
  lines: Array<[string, string | Buffer]> & { path?: string; method?: string },
): { req: unknown; carriesKey: boolean } {
  const path = lines.path!;
  const method = lines.method!;
  const carriesKey = lines.some(([, v]) => typeof v === 'string' && v.includes(validKey)) || path.includes(validKey);
  const http: Record<string, unknown> = {
    method,
    path,
    host: g.pick(['api.example.com', '', 'API.EXAMPLE.COM:443', '[::1]:80', g.ascii(20)]),
  };
  if (g.chance(0.5)) {
    http.header_map = {
      headers: lines.map(([k, v]) => ({ key: k, raw_value: Buffer.isBuffer(v) ? v : Buffer.from(v) })),
    };
  } else {
    const map: Record<string, string> = {};
    for (const [k, v] of lines) {
      const lk = k.toLowerCase();
      const sv = Buffer.isBuffer(v) ? v.toString('latin1') : v;
      map[lk] = map[lk] === undefined ? sv : `${map[lk]},${sv}`;
    }
    http.headers = map;
  }
  const ext: Record<string, string> = {};
  if (g.chance(0.1)) ext['portcullis.route'] = g.pick(['orders-read', 'public', 'nope', '']);
  if (g.chance(0.1)) ext['portcullis.scopes'] = g.pick(['orders:read', 'x y', ',,', '']);
  return {
    req: {
      attributes: {
        source: g.chance(0.9)
          ? {
              address: {
                socket_address: {
                  address: g.pick(['10.1.2.3', '::1', '', 'garbage', '::ffff:10.0.0.1']),
                  port_value: 1,
                },
              },
            }
          : undefined,
        request: { http },
        context_extensions: ext,
      },
    },
    carriesKey,
  };
}

// ---------------------------------------------------------------------------------------------
// Mutated credentials: JWTs, opaque tokens and API keys, broken at the string level. The oracle
// (credentialEarned) says when a mutated value may still be allowed: only when it is the same
// credential (the exact string, or a JWT whose signed part is identical and whose signature
// decodes to the same bytes).

const B64URL = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_';

function b64json(v: unknown): string {
  return Buffer.from(typeof v === 'string' ? v : JSON.stringify(v)).toString('base64url');
}

/** One string-level mutation of a token. */
export function mutateToken(g: Gen, token: string): string {
  const parts = token.split('.');
  switch (g.int(18)) {
    case 0: {
      // flip one base64url character
      const i = g.int(token.length);
      return token.slice(0, i) + g.pick(B64URL.split('')) + token.slice(i + 1);
    }
    case 1:
      return token.slice(0, g.int(token.length));
    case 2:
      return token + g.pick(['.', '..', '=', '==', 'A', '.e30', ' ', '\t']);
    case 3:
      return parts.length >= 3 ? `${parts[0]}.${parts[1]}.` : token + '.';
    case 4:
      return parts.length >= 3 ? `${parts[0]}.${parts[1]}` : token;
    case 5:
      return parts.length >= 3 ? `${parts[1]}.${parts[0]}.${parts[2]}` : token.split('').reverse().join('');
    case 6:
      return parts.length >= 3 ? `${parts[0]}.${parts[1]}.${parts[2]}.${parts[2]}` : `${token}.${token}`;
    case 7:
      // standard base64 alphabet and padding instead of base64url
      return token.replace(/-/g, '+').replace(/_/g, '/') + (g.chance(0.5) ? '=' : '');
    case 8:
      return g.chance(0.5) ? token.toUpperCase() : token.toLowerCase();
    case 9: {
      const i = g.int(token.length);
      return (
        token.slice(0, i) + g.pick(['\u0000', '%00', '\u00e9', '\ud83d\ude00', ' ', ',', '"', '\\']) + token.slice(i)
      );
    }
    case 10:
      return token + g.ascii(g.int(64), B64URL);
    case 11:
      return token.repeat(2 + g.int(3));
    case 12:
      return parts.length >= 3 ? `${parts[0]}.${parts[1]}.${parts[2].slice(0, -1 - g.int(8))}` : token.slice(1);
    case 13: {
      // a header swapped for another (alg none / HMAC / other families), the rest kept
      const header = g.pick([
        { alg: 'none', typ: 'at+jwt' },
        { alg: 'HS256', typ: 'at+jwt' },
        { alg: 'RS512', typ: 'at+jwt' },
        { alg: 'ES256', typ: 'at+jwt' },
        { alg: 'EdDSA', typ: 'at+jwt' },
        { alg: 'PS256', typ: 'at+jwt' },
        { alg: 'RS256', typ: 'at+jwt', kid: '../../../../etc/passwd' },
        { alg: 'RS256', typ: 'at+jwt', kid: "' OR 1=1 --" },
        { alg: 'RS256', typ: 'at+jwt', kid: 'k'.repeat(5000) },
        { alg: 'RS256', typ: 'at+jwt', jku: 'http://127.0.0.1:1/jwks' },
        { alg: 'RS256', typ: 'at+jwt', x5u: 'http://127.0.0.1:1/cert' },
        { alg: 'RS256', typ: 'at+jwt', crit: ['exp'] },
        { alg: 'RS256', typ: 'at+jwt', b64: false, crit: ['b64'] },
        { alg: 'RS256', typ: 'JWT' },
        { alg: 'RS256' },
        { alg: ['RS256'], typ: 'at+jwt' },
        { alg: null },
        '{"alg":"RS256","alg":"none","typ":"at+jwt"}',
        'not json',
        '[]',
        '1e999',
      ]);
      return [b64json(header), ...parts.slice(1)].join('.');
    }
    case 14: {
      // payload edited (scope escalation, another subject, longer life, other aud/iss), signature kept
      if (parts.length < 3) return token;
      let payload: Record<string, unknown> = {};
      try {
        const parsed: unknown = JSON.parse(Buffer.from(parts[1], 'base64url').toString());
        // An earlier mutation may have left null, an array or a number there.
        if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) payload = parsed as Record<string, unknown>;
      } catch {
        /* not a JWT: edit an empty payload */
      }
      const edit = g.pick<(p: Record<string, unknown>) => unknown>([
        (p) => ({ ...p, scope: 'orders:read orders:write admin' }),
        (p) => ({ ...p, sub: 'admin', client_id: 'admin' }),
        (p) => ({ ...p, exp: Number(p.exp ?? 0) + 365 * 86400 }),
        (p) => ({ ...p, aud: 'https://evil.example' }),
        (p) => ({ ...p, iss: `${String(p.iss)}/` }),
        (p) => ({ ...p, scope: ['orders:read'] }),
        (p) => `${JSON.stringify(p)} `,
        () => 'null',
        () => '[1,2,3]',
      ]);
      const edited = edit(payload);
      return [parts[0], b64json(typeof edited === 'string' ? edited : edited), parts[2]].join('.');
    }
    case 15:
      // the payload re-encoded with a stray non-canonical character: same JSON, different signed bytes
      return parts.length >= 3 ? [parts[0], parts[1] + g.pick(['A', '_', '-']), parts[2]].join('.') : token;
    case 16:
      return g.ascii(g.int(40), B64URL + '.');
    default:
      return ' '.repeat(g.int(3)) + token + ' '.repeat(g.int(3));
  }
}

/** A valid credential the fuzz starts from, and the identity it carries. */
export interface ValidCredential {
  value: string;
  kind: 'jwt' | 'opaque' | 'api-key';
  clientId: string;
}

/** How a credential is placed in the request: the placements all carry the same value. */
export function placeCredential(g: Gen, kind: ValidCredential['kind'], value: string): Record<string, string> {
  if (kind === 'api-key') {
    return g.chance(0.7)
      ? { 'x-api-key': value }
      : { authorization: `${g.pick(['ApiKey', 'apikey', 'APIKEY'])} ${value}` };
  }
  return { authorization: `${g.pick(['Bearer', 'bearer', 'BEARER', 'Bearer'])} ${value}` };
}

/**
 * May an answer that allowed `sent` be right? Only if it is exactly one of the valid credentials
 * (surrounding spaces aside). A JWT whose signature is another spelling of the same bytes (unused
 * bits set in its last character) is not the token: every JWT segment must be canonical base64url.
 * Returns the client the allow must carry, or undefined when no allow is earned.
 */
export function credentialEarned(sent: string, valid: ValidCredential[]): ValidCredential | undefined {
  const trimmed = sent.trim();
  for (const v of valid) if (trimmed === v.value) return v;
  return undefined;
}
