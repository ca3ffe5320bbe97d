// A protobuf writer that fills a scratch buffer from the end towards the start: a sub-message's
// length is known as soon as its fields are written, so one pass does it, with no size
// precomputation and no per-field allocation (protobufjs's Writer allocates an op per field and
// re-walks them in finish()). Fields are therefore written last-first.
// Strings are encoded exactly as protobufjs's BufferWriter does (length from Buffer.byteLength;
// bytes by protobufjs's own UTF-8 writer under 40 UTF-16 units, by Buffer otherwise), so the output
// is byte-identical to it, lone surrogates included.
import protobuf from 'protobufjs';

const utf8 = protobuf.util.utf8;

export class ReverseWriter {
  private buf: Buffer;
  private pos: number;

  constructor(initialBytes = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initialBytes);
    this.pos = this.buf.length;
  }

  /** Starts a message that needs at most `maxBytes`. */
  reset(maxBytes: number): void {
    if (maxBytes > this.buf.length) this.buf = Buffer.allocUnsafe(Math.max(maxBytes, this.buf.length * 2));
    this.pos = this.buf.length;
  }

  /** Position marking the end of a sub-message about to be written (pass it to `close`). */
  mark(): number {
    return this.pos;
  }

  /** Prefixes everything written since `mark` with its length and `tag`. */
  close(tag: number, mark: number): this {
    return this.varint(mark - this.pos).byte(tag);
  }

  byte(b: number): this {
    this.buf[--this.pos] = b;
    return this;
  }

  varint(v: number): this {
    // Values here are lengths and small enum/int32 codes: non-negative and < 2^31.
    if (v < 0x80) {
      this.buf[--this.pos] = v;
      return this;
    }
    let n = 1;
    for (let x = v >>> 7; x; x >>>= 7) n++;
    let p = (this.pos -= n);
    while (v >= 0x80) {
      this.buf[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[p] = v;
    return this;
  }

  /** A length-delimited string field. */
  string(tag: number, s: string): this {
    const n = s.length;
    if (n < 40) {
      // ASCII (header names, most values): bytes = UTF-16 units, written in the same pass that
      // checks them. On the first other unit, the general path below rewrites the whole field
      // (its UTF-8 length is at least n, so it covers what was written here).
      const buf = this.buf;
      const start = this.pos - n;
      let i = 0;
      for (; i < n; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) break;
        buf[start + i] = c;
      }
      if (i === n) {
        this.pos = start;
        return this.varint(n).byte(tag);
      }
    }
    const len = byteLength(s);
    this.pos -= len;
    if (len) {
      if (s.length < 40) utf8.write(s, this.buf, this.pos);
      else this.buf.write(s, this.pos, len, 'utf8');
    }
    return this.varint(len).byte(tag);
  }

  /** Pre-encoded bytes as they are (already tagged and length-prefixed by the caller). */
  raw(bytes: Uint8Array): this {
    this.pos -= bytes.length;
    this.buf.set(bytes, this.pos);
    return this;
  }

  /** A copy of what was written (the scratch buffer is reused by the next message). */
  finish(): Buffer {
    const out = Buffer.allocUnsafe(this.buf.length - this.pos);
    this.buf.copy(out, 0, this.pos);
    return out;
  }
}

function byteLength(s: string): number {
  if (s.length < 40) {
    for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) >= 0x80) return Buffer.byteLength(s);
    return s.length;
  }
  return Buffer.byteLength(s);
}

/** Upper bound of the encoded size of a string field: 3 bytes per UTF-16 unit, tag and length. */
export function stringBound(s: string): number {
  return 3 * s.length + 6;
}
