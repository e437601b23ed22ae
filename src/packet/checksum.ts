// Internet checksum (RFC 1071) over a byte view, plus the O(1) incremental update of RFC 1624.

/** One's-complement sum of big-endian 16-bit words in u8[off, off+len), added to acc (unfolded). */
export function sum16(u8: Uint8Array, off: number, len: number, acc = 0): number {
  const end = off + (len & ~1);
  let s = acc;
  for (let i = off; i < end; i += 2) s += (u8[i] << 8) | u8[i + 1];
  if (len & 1) s += u8[off + len - 1] << 8;
  return s;
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
