// normalizePath (src/core/paths.ts) against the plain reading it replaced (regex, split): the same
// answer, reason included, for every path. Fuzzed over an alphabet made of what matters to paths.
import { describe, expect, it } from 'vitest';
import { normalizePath, type PathResult } from '../../src/core/paths.ts';

const UNRESERVED = /[A-Za-z0-9\-._~]/;
const ALLOWED_LITERAL = /^[A-Za-z0-9\-._~!$&'()*+,=:@%/]*$/;

/** Why an escaped ASCII character is refused (the rule set of docs/security.md, "Paths"), or undefined. */
function asciiEscapeRule(code: number): string | undefined {
  if (code === 0x2f || code === 0x5c || code === 0x00) return 'path_encoded_separator';
  if (code === 0x25) return 'path_double_encoding';
  if (code < 0x20 || code === 0x7f) return 'path_encoded_control';
  if (code === 0x20) return 'path_encoded_whitespace';
  if ('?#;'.includes(String.fromCharCode(code))) return 'path_encoded_delimiter';
  return undefined;
}

/** Why a decoded non-ASCII character is refused, by Unicode properties and normalization. */
function nonAsciiRule(ch: string): string | undefined {
  if (/\p{Cc}/u.test(ch)) return 'path_encoded_control';
  if (/\p{White_Space}/u.test(ch)) return 'path_encoded_whitespace';
  if (/[\p{Default_Ignorable_Code_Point}\p{Cf}]/u.test(ch)) return 'path_encoded_invisible';
  for (const form of [ch.normalize('NFKC'), ch.toLowerCase(), ch.toUpperCase()])
    if (/[\x00-\x7f]/.test(form)) return 'path_confusable';
  return undefined;
}

/**
 * The plain reading: regexes, split, and decodeURIComponent (strict UTF-8) for escaped non-ASCII
 * bytes, one character at a time. The char-code implementation must agree with it, reason included.
 */
function reference(rawPath: string): PathResult | { ok: false; reason: string } {
  if (typeof rawPath !== 'string' || rawPath.length === 0) return { ok: false, reason: 'path_empty' };
  if (rawPath.length > 8192) return { ok: false, reason: 'path_too_long' };
  const q = rawPath.indexOf('?');
  const path = q === -1 ? rawPath : rawPath.slice(0, q);
  if (path[0] !== '/') return { ok: false, reason: 'path_not_absolute' };
  if (!ALLOWED_LITERAL.test(path)) return { ok: false, reason: 'path_bad_character' };
  let out = path;
  if (path.includes('%')) {
    let decoded = '';
    let pending: number[] = []; // escaped bytes >= 0x80 not yet decoded
    const flush = (): string | undefined => {
      for (let k = 0; k < pending.length;) {
        let ch: string | undefined;
        let n = 2;
        for (; n <= 4 && k + n <= pending.length && ch === undefined; n++) {
          try {
            const d = decodeURIComponent(
              pending
                .slice(k, k + n)
                .map((b) => '%' + b.toString(16).toUpperCase())
                .join(''),
            );
            if ([...d].length === 1) ch = d;
          } catch {
            /* not (yet) a character */
          }
        }
        if (ch === undefined) return 'path_invalid_utf8';
        const rule = nonAsciiRule(ch);
        if (rule) return rule;
        decoded += pending
          .slice(k, k + n - 1)
          .map((b) => '%' + b.toString(16).toUpperCase().padStart(2, '0'))
          .join('');
        k += n - 1;
      }
      pending = [];
      return undefined;
    };
    for (let i = 0; i < path.length; i++) {
      const c = path[i];
      if (c !== '%') {
        const bad = flush();
        if (bad) return { ok: false, reason: bad };
        decoded += c;
        continue;
      }
      const hex = path.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) {
        const bad = flush();
        return { ok: false, reason: bad ?? 'path_bad_escape' };
      }
      const code = parseInt(hex, 16);
      i += 2;
      if (code >= 0x80) {
        pending.push(code);
        continue;
      }
      const bad = flush();
      if (bad) return { ok: false, reason: bad };
      const rule = asciiEscapeRule(code);
      if (rule) return { ok: false, reason: rule };
      const ch = String.fromCharCode(code);
      decoded += UNRESERVED.test(ch) ? ch : '%' + hex.toUpperCase();
    }
    const bad = flush();
    if (bad) return { ok: false, reason: bad };
    out = decoded;
  }
  if (out.includes('//')) return { ok: false, reason: 'path_empty_segment' };
  const segments = out.split('/');
  if (segments.some((s) => s === '.' || s === '..')) return { ok: false, reason: 'path_dot_segment' };
  if (segments.some((s) => s.endsWith('.'))) return { ok: false, reason: 'path_trailing_dot' };
  return { ok: true, path: out };
}

// Tokens, not characters: dot segments, escapes (valid, invalid, of separators, of dots), and
// characters either side of the allowed set, including non-ASCII.
const TOKENS = [
  '/',
  '/',
  '/',
  '.',
  '..',
  '...',
  'a',
  'Z',
  '9',
  '-',
  '_',
  '~',
  '%2e',
  '%2E',
  '%2f',
  '%5C',
  '%00',
  '%25',
  '%41',
  '%7e',
  '%20',
  '%zz',
  '%4',
  '%',
  '?',
  '?x=/..',
  ';',
  ' ',
  '"',
  '\\',
  '#',
  '[',
  'é',
  '\u0000',
  '\ud83d',
  '!',
  '$',
  '&',
  "'",
  '(',
  '*',
  '+',
  ',',
  '=',
  ':',
  '@',
  // escapes the confusion rules are about: delimiters, controls, UTF-8 (valid, overlong, truncated,
  // surrogate, too large) and characters that normalize or case-map to ASCII
  '%3F',
  '%23',
  '%3b',
  '%09',
  '%0A',
  '%7F',
  '%C3%A9',
  '%c3%A9',
  '%C3',
  '%A9',
  '%C0%AE',
  '%C0%AF',
  '%E0%80%AE',
  '%F0%80%80%AE',
  '%ED%A0%80',
  '%F4%90%80%80',
  '%FF',
  '%C2%A0',
  '%C2%85',
  '%E2%80%A8',
  '%E3%80%80',
  '%EF%BB%BF',
  '%E2%80%8B',
  '%C2%AD',
  '%EF%BD%81',
  '%EF%BC%8F',
  '%C5%BF',
  '%C4%B1',
  '%E2%84%AA',
  '%C3%9F',
  '%E6%97%A5',
  '%F0%9F%98%80',
];

function randomPath(rand: () => number): string {
  let s = rand() < 0.9 ? '/' : '';
  const n = Math.floor(rand() * 8);
  for (let i = 0; i < n; i++) s += TOKENS[Math.floor(rand() * TOKENS.length)];
  return s;
}

// A small deterministic PRNG (mulberry32): a failure names a reproducible seed.
function mulberry32(seed: number): () => number {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

describe('normalizePath', () => {
  it.each([
    ['/v1/orders/7', { ok: true, path: '/v1/orders/7' }],
    ['/', { ok: true, path: '/' }],
    ['/a/', { ok: true, path: '/a/' }],
    ['/a/%7Eb%41', { ok: true, path: '/a/~bA' }],
    ['/a/%22%7B%7D', { ok: true, path: '/a/%22%7B%7D' }],
    ['/a/%c3%a9t%C3%A9', { ok: true, path: '/a/%C3%A9t%C3%A9' }],
    ['/a/%F0%9F%98%80', { ok: true, path: '/a/%F0%9F%98%80' }],
    ['/a/%20', { ok: false, reason: 'path_encoded_whitespace' }],
    ['/admin%09', { ok: false, reason: 'path_encoded_control' }],
    ['/admin%0d%0a', { ok: false, reason: 'path_encoded_control' }],
    ['/admin%3Fx', { ok: false, reason: 'path_encoded_delimiter' }],
    ['/admin%23x', { ok: false, reason: 'path_encoded_delimiter' }],
    ['/admin%3bx', { ok: false, reason: 'path_encoded_delimiter' }],
    ['/admin%C2%A0', { ok: false, reason: 'path_encoded_whitespace' }],
    ['/admin%E3%80%80', { ok: false, reason: 'path_encoded_whitespace' }],
    ['/admin%C2%85', { ok: false, reason: 'path_encoded_control' }],
    ['/ad%C2%ADmin', { ok: false, reason: 'path_encoded_invisible' }],
    ['/admin%EF%BB%BF', { ok: false, reason: 'path_encoded_invisible' }],
    ['/public/%C0%AE%C0%AE/admin', { ok: false, reason: 'path_invalid_utf8' }],
    ['/public/%E0%80%AE%E0%80%AE/admin', { ok: false, reason: 'path_invalid_utf8' }],
    ['/public/%F0%80%80%AE', { ok: false, reason: 'path_invalid_utf8' }],
    ['/public/..%C0%AFadmin', { ok: false, reason: 'path_invalid_utf8' }],
    ['/a/%ED%A0%80', { ok: false, reason: 'path_invalid_utf8' }],
    ['/a/%F4%90%80%80', { ok: false, reason: 'path_invalid_utf8' }],
    ['/a/%C3', { ok: false, reason: 'path_invalid_utf8' }],
    ['/a/%C3b', { ok: false, reason: 'path_invalid_utf8' }],
    ['/a/%A9', { ok: false, reason: 'path_invalid_utf8' }],
    ['/a/%FF', { ok: false, reason: 'path_invalid_utf8' }],
    ['/%EF%BD%81dmin', { ok: false, reason: 'path_confusable' }],
    ['/admin%EF%BC%8Fx', { ok: false, reason: 'path_confusable' }],
    ['/adm%C4%B1n', { ok: false, reason: 'path_confusable' }],
    ['/%E2%84%AAey', { ok: false, reason: 'path_confusable' }],
    ['/admin.', { ok: false, reason: 'path_trailing_dot' }],
    ['/admin%2e', { ok: false, reason: 'path_trailing_dot' }],
    ['/admin../x', { ok: false, reason: 'path_trailing_dot' }],
    ['/admin.json', { ok: true, path: '/admin.json' }],
    ['//a', { ok: false, reason: 'path_empty_segment' }],
    ['/a/./b', { ok: false, reason: 'path_dot_segment' }],
    ['/a/..', { ok: false, reason: 'path_dot_segment' }],
    ['/a/.../b', { ok: false, reason: 'path_trailing_dot' }],
    ['/a/.b', { ok: true, path: '/a/.b' }],
    ['/a/%2e%2E/b', { ok: false, reason: 'path_dot_segment' }],
    ['/./a//b', { ok: false, reason: 'path_empty_segment' }],
    ['/a%2fb', { ok: false, reason: 'path_encoded_separator' }],
    ['/a%252e', { ok: false, reason: 'path_double_encoding' }],
    ['/a%zz', { ok: false, reason: 'path_bad_escape' }],
    ['/a;b', { ok: false, reason: 'path_bad_character' }],
    ['/é', { ok: false, reason: 'path_bad_character' }],
    ['a/b', { ok: false, reason: 'path_not_absolute' }],
    ['', { ok: false, reason: 'path_empty' }],
    ['/a?b=/../..', { ok: true, path: '/a' }],
  ])('%s', (raw, expected) => {
    expect(normalizePath(raw)).toEqual(expected);
    expect(reference(raw)).toEqual(expected);
  });

  it('agrees with the reference implementation on 200,000 fuzzed paths', () => {
    const rand = mulberry32(7);
    let rejected = 0;
    for (let i = 0; i < 200_000; i++) {
      const p = randomPath(rand);
      const got = normalizePath(p);
      const want = reference(p);
      if (!got.ok) rejected++;
      if (JSON.stringify(got) !== JSON.stringify(want)) expect({ path: p, got }).toEqual({ path: p, got: want });
    }
    // Both kinds of answer are well exercised.
    expect(rejected).toBeGreaterThan(20_000);
    expect(rejected).toBeLessThan(190_000);
  });
});
