// API key format: `<prefix>_<32 random base62><6 base62 CRC-32>`.
// The prefix makes keys recognizable (secret scanners, logs review); the checksum lets a typo or a
// random guess be rejected without a store lookup. The store keeps only SHA-256(key).
import { hash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const RANDOM_LEN = 32;
const CHECK_LEN = 6;

function base62(n: number, width: number): string {
  let s = '';
  for (let i = 0; i < width; i++) {
    s = ALPHABET[n % 62] + s;
    n = Math.floor(n / 62);
  }
  return s;
}

function randomBase62(len: number): string {
  // Rejection sampling keeps every character uniform (256 is not a multiple of 62).
  let s = '';
  while (s.length < len) {
    for (const b of randomBytes(len * 2)) {
      if (b < 248 && s.length < len) s += ALPHABET[b % 62];
    }
  }
  return s;
}

function checksum(prefix: string, random: string): string {
  return base62(crc32(`${prefix}_${random}`), CHECK_LEN);
}

export function generateApiKey(prefix: string): string {
  const random = randomBase62(RANDOM_LEN);
  return `${prefix}_${random}${checksum(prefix, random)}`;
}

/** True if the string has the shape of a key with this prefix (checksum not verified). */
export function looksLikeApiKey(value: string, prefix: string): boolean {
  return value.length === prefix.length + 1 + RANDOM_LEN + CHECK_LEN && value.startsWith(prefix + '_');
}

/** Shape and checksum. A false here is answered without touching the store. */
export function isWellFormedApiKey(value: string, prefix: string): boolean {
  if (!looksLikeApiKey(value, prefix)) return false;
  const body = value.slice(prefix.length + 1);
  for (let i = 0; i < body.length; i++) {
    const c = body.charCodeAt(i);
    const ok = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
    if (!ok) return false;
  }
  return body.slice(RANDOM_LEN) === checksum(prefix, body.slice(0, RANDOM_LEN));
}

export function hashApiKey(key: string): string {
  // One-shot hash: no Hash object per Check.
  return hash('sha256', key, 'hex');
}

export function newKeyId(): string {
  return 'key_' + randomBase62(16);
}
