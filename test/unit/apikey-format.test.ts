// API key format (src/credentials/api-key/format.ts): the per-Check checksum test (a CRC-32 by
// table) must agree with the zlib CRC-32 that generation uses, on valid and altered keys alike.
import { crc32 } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { generateApiKey, isWellFormedApiKey } from '../../src/credentials/api-key/format.ts';

const ALPHABET = '0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
/** The checksum as generation defines it: base62 of zlib's CRC-32, 6 digits. */
function zlibChecksum(s: string): string {
  let n = crc32(s);
  let out = '';
  for (let i = 0; i < 6; i++) {
    out = ALPHABET[n % 62] + out;
    n = Math.floor(n / 62);
  }
  return out;
}

describe('isWellFormedApiKey', () => {
  it('accepts generated keys, for several prefixes', () => {
    for (const prefix of ['pcl', 'ab', 'x1234567890abcde']) {
      for (let i = 0; i < 200; i++) expect(isWellFormedApiKey(generateApiKey(prefix), prefix)).toBe(true);
    }
  });

  it('rejects every single-character change, in the random part and in the checksum', () => {
    const key = generateApiKey('pcl');
    const body = key.length - 38;
    for (let i = body; i < key.length; i++) {
      const other = key[i] === 'a' ? 'b' : 'a';
      const altered = key.slice(0, i) + other + key.slice(i + 1);
      expect(isWellFormedApiKey(altered, 'pcl'), altered).toBe(false);
    }
  });

  it('agrees with the zlib checksum on random bodies, right and wrong', () => {
    let accepted = 0;
    for (let i = 0; i < 5000; i++) {
      let random = '';
      for (let j = 0; j < 32; j++) random += ALPHABET[Math.floor(Math.random() * 62)];
      const right = zlibChecksum(`pcl_${random}`);
      // Half the time a checksum that differs from the right one in one random position.
      let check = right;
      if (i % 2) {
        const p = Math.floor(Math.random() * 6);
        check =
          right.slice(0, p) +
          ALPHABET[(ALPHABET.indexOf(right[p]) + 1 + Math.floor(Math.random() * 61)) % 62] +
          right.slice(p + 1);
      }
      const got = isWellFormedApiKey(`pcl_${random}${check}`, 'pcl');
      expect(got).toBe(check === right);
      if (got) accepted++;
    }
    expect(accepted).toBe(2500);
  });

  it('rejects the wrong prefix, length or alphabet before any checksum', () => {
    const key = generateApiKey('pcl');
    expect(isWellFormedApiKey(key, 'pcx')).toBe(false);
    expect(isWellFormedApiKey(key.slice(0, -1), 'pcl')).toBe(false);
    expect(isWellFormedApiKey(`${key.slice(0, 10)}-${key.slice(11)}`, 'pcl')).toBe(false);
    expect(isWellFormedApiKey(`${key.slice(0, 10)}é${key.slice(11)}`, 'pcl')).toBe(false);
  });
});
