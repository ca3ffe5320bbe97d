// normalizePath (src/core/paths.ts) against the plain reading it replaced (regex, split): the same
// answer, reason included, for every path. Fuzzed over an alphabet made of what matters to paths.
import { describe, expect, it } from 'vitest';
import { normalizePath, type PathResult } from '../../src/core/paths.ts';

const UNRESERVED = /[A-Za-z0-9\-._~]/;
const ALLOWED_LITERAL = /^[A-Za-z0-9\-._~!$&'()*+,=:@%/]*$/;

/** The implementation before the char-code passes (git history: src/core/paths.ts), kept as the reference. */
function reference(rawPath: string): PathResult {
  if (typeof rawPath !== 'string' || rawPath.length === 0) return { ok: false, reason: 'path_empty' };
  if (rawPath.length > 8192) return { ok: false, reason: 'path_too_long' };
  const q = rawPath.indexOf('?');
  const path = q === -1 ? rawPath : rawPath.slice(0, q);
  if (path[0] !== '/') return { ok: false, reason: 'path_not_absolute' };
  if (!ALLOWED_LITERAL.test(path)) return { ok: false, reason: 'path_bad_character' };
  let out = path;
  if (path.includes('%')) {
    let decoded = '';
    for (let i = 0; i < path.length; i++) {
      const c = path[i];
      if (c !== '%') {
        decoded += c;
        continue;
      }
      const hex = path.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return { ok: false, reason: 'path_bad_escape' };
      const code = parseInt(hex, 16);
      const ch = String.fromCharCode(code);
      if (code === 0x2f || code === 0x5c || code === 0x00) return { ok: false, reason: 'path_encoded_separator' };
      if (code === 0x25) return { ok: false, reason: 'path_double_encoding' };
      decoded += UNRESERVED.test(ch) ? ch : '%' + hex.toUpperCase();
      i += 2;
    }
    out = decoded;
  }
  if (out.includes('//')) return { ok: false, reason: 'path_empty_segment' };
  for (const s of out.split('/')) if (s === '.' || s === '..') return { ok: false, reason: 'path_dot_segment' };
  return { ok: true, path: out };
}

// Tokens, not characters: dot segments, escapes (valid, invalid, of separators, of dots), and
// characters either side of the allowed set, including non-ASCII.
const TOKENS = ['/', '/', '/', '.', '..', '...', 'a', 'Z', '9', '-', '_', '~', '%2e', '%2E', '%2f', '%5C', '%00', '%25', '%41', '%7e', '%20', '%zz', '%4', '%', '?', '?x=/..', ';', ' ', '"', '\\', '#', '[', 'é', '\u0000', '\ud83d', '!', '$', '&', "'", '(', '*', '+', ',', '=', ':', '@'];

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
    ['/a/%20', { ok: true, path: '/a/%20' }],
    ['//a', { ok: false, reason: 'path_empty_segment' }],
    ['/a/./b', { ok: false, reason: 'path_dot_segment' }],
    ['/a/..', { ok: false, reason: 'path_dot_segment' }],
    ['/a/.../b', { ok: true, path: '/a/.../b' }],
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
