// API key format: `<prefix>_<32 random base62><6 base62 CRC-32>`.
// The prefix makes keys recognizable (secret scanners, logs review); the checksum lets a typo or a
// random guess be rejected without a store lookup. The store keeps only SHA-256(key).
import { hash, randomBytes } from 'node:crypto';
import { crc32 } from 'node:zlib';
import { API_KEY_BODY_LENGTH, looksLikeApiKey } from '../../core/credential.ts';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const RANDOM_LEN = 32;
const CHECK_LEN = API_KEY_BODY_LENGTH - RANDOM_LEN;

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

/** Shape and checksum. A false here is answered without touching the store. */
export function isWellFormedApiKey(value: string, prefix: string): boolean {
  if (!looksLikeApiKey(value, prefix)) return false;
  for (let i = prefix.length + 1; i < value.length; i++) {
    const c = value.charCodeAt(i);
    const ok = (c >= 48 && c <= 57) || (c >= 65 && c <= 90) || (c >= 97 && c <= 122);
    if (!ok) return false;
  }
  return checksumMatches(value);
}

// CRC-32 (IEEE, as node:zlib's crc32) by table, over char codes: on every Check this runs on a
// string already checked to be ASCII, and a JS loop over a key's characters costs less than zlib's native
// call with its string conversion, the slices and the base62 string it replaced. Generation still
// uses zlib (checksum above); test/unit/apikey-format.test.ts checks the two agree.
const CRC_TABLE = (() => {
  const t = new Int32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c;
  }
  return t;
})();

/** Whether the last CHECK_LEN chars are the base62 CRC-32 of the rest (ASCII only). */
function checksumMatches(value: string): boolean {
  const end = value.length - CHECK_LEN;
  let c = -1;
  for (let i = 0; i < end; i++) c = CRC_TABLE[(c ^ value.charCodeAt(i)) & 0xff] ^ (c >>> 8);
  let n = (c ^ -1) >>> 0;
  // base62 digits, least significant last (as base62() writes them).
  for (let i = value.length - 1; i >= end; i--) {
    if (value.charCodeAt(i) !== ALPHABET.charCodeAt(n % 62)) return false;
    n = Math.floor(n / 62);
  }
  return true;
}

export function hashApiKey(key: string): string {
  // One-shot hash: no Hash object per Check.
  return hash('sha256', key, 'hex');
}

export function newKeyId(): string {
  return 'key_' + randomBase62(16);
}
