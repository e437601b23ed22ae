// Internet checksum (RFC 1071) over a byte view, plus the O(1) incremental update of RFC 1624.

/** One's-complement sum of big-endian 16-bit words in u8[off, off+len), added to acc (unfolded). */
export function sum16(u8: Uint8Array, off: number, len: number, acc = 0): number {
  if (len >= WIDE_MIN && ((u8.byteOffset + off) & 1) === 0) return acc + sumWide(u8, u8.byteOffset + off, len);
  const end = off + (len & ~1);
  let s = acc;
  for (let i = off; i < end; i += 2) s += (u8[i] << 8) | u8[i + 1];
  if (len & 1) s += u8[off + len - 1] << 8;
  return s;
}

/** Below this many bytes the byte loop is as fast. */
const WIDE_MIN = 64;
const LITTLE = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
// 16- and 32-bit views of the last buffer summed (one per buffer, not per call)
let wideOf: ArrayBufferLike | null = null;
let w8: Uint8Array<ArrayBufferLike> = new Uint8Array(0),
  w16: Uint16Array<ArrayBufferLike> = new Uint16Array(0),
  w32: Uint32Array<ArrayBufferLike> = new Uint32Array(0);

/**
 * The same sum, 4 bytes per step: one's-complement sums do not depend on byte order (RFC 1071), so
 * native 32-bit words are added and the folded result swapped back to big-endian. abs is even.
 */
function sumWide(u8: Uint8Array, abs: number, len: number): number {
  const buf = u8.buffer;
  if (buf !== wideOf) {
    wideOf = buf;
    w8 = new Uint8Array(buf);
    w16 = new Uint16Array(buf, 0, buf.byteLength >> 1);
    w32 = new Uint32Array(buf, 0, buf.byteLength >> 2);
  }
  const end = abs + len;
  let p = abs,
    s = 0;
  if (p & 2) {
    s += w16[p >> 1];
    p += 2;
  }
  const n4 = (end - p) >> 2;
  for (let k = p >> 2, e = k + n4; k < e; k++) s += w32[k];
  p += n4 << 2;
  if (p + 2 <= end) {
    s += w16[p >> 1];
    p += 2;
  }
  if (p < end) s += LITTLE ? w8[p] : w8[p] << 8;
  const f = fold(s);
  return LITTLE ? ((f & 0xff) << 8) | (f >> 8) : f;
}

/** Fold a wide sum into 16 bits (not inverted). */
export function fold(s: number): number {
  // sums below 2^32 (every per-packet sum) fold with bit operations; wider ones take the slow path
  while (s > 0xffff) s = s < 4294967296 ? (s & 0xffff) + (s >>> 16) : (s % 65536) + Math.floor(s / 65536);
  return s;
}

/** The checksum field value: ~fold(sum). */
export function finish(s: number): number {
  return ~fold(s) & 0xffff;
}

export function checksum(u8: Uint8Array, off: number, len: number, acc = 0): number {
  return finish(sum16(u8, off, len, acc));
}

/** RFC 1624 eqn 3: new checksum after a 16-bit field changes from `old` to `now`. */
export function csumUpdate16(csum: number, old: number, now: number): number {
  return ~fold((~csum & 0xffff) + (~old & 0xffff) + now) & 0xffff;
}

/** Same for a 32-bit field. */
export function csumUpdate32(csum: number, old: number, now: number): number {
  const s = (~csum & 0xffff) + (~(old >>> 16) & 0xffff) + (~old & 0xffff) + (now >>> 16) + (now & 0xffff);
  return ~fold(s) & 0xffff;
}
