// IPv6 fixed header at a byte offset.
export const IPV6_HLEN = 40;
export const IP6 = { vtc: 0, plen: 4, next: 6, hlim: 7, src: 8, dst: 24 } as const;

export function parseIPv6(s: string): Uint8Array {
  const out = new Uint8Array(16);
  const bad = () => new Error(`bad IPv6 address '${s}'`);
  if (!/^[0-9a-fA-F:]+$/.test(s) || s.split("::").length > 2) throw bad();
  const [l, r] = s.includes("::") ? s.split("::") : [s, undefined];
  const left = l ? l.split(":") : [];
  const right = r ? r.split(":") : [];
  if (r === undefined && left.length !== 8) throw bad();
  if (left.length + right.length > (r === undefined ? 8 : 7)) throw bad();
  const words = [...left, ...Array(8 - left.length - right.length).fill("0"), ...right];
  words.forEach((w, i) => {
    if (!/^[0-9a-fA-F]{1,4}$/.test(w)) throw bad();
    const v = parseInt(w, 16);
    out[2 * i] = v >> 8;
    out[2 * i + 1] = v & 255;
  });
  return out;
}

export function formatIPv6(b: Uint8Array, off = 0): string {
  const w: string[] = [];
  for (let i = 0; i < 8; i++) w.push(((b[off + 2 * i] << 8) | b[off + 2 * i + 1]).toString(16));
  // compress the longest run of zeros (RFC 5952)
  let best = -1,
    bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (w[i] !== "0") {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && w[j] === "0") j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return w.join(":");
  return `${w.slice(0, best).join(":")}::${w.slice(best + bestLen).join(":")}`;
}

export function writeIPv6(
  u8: Uint8Array,
  o: number,
  f: { src: Uint8Array; dst: Uint8Array; next: number; payloadLen: number; hopLimit?: number },
): void {
  u8[o] = 0x60;
  u8[o + 1] = 0;
  u8[o + 2] = 0;
  u8[o + 3] = 0;
  u8[o + 4] = f.payloadLen >> 8;
  u8[o + 5] = f.payloadLen & 255;
  u8[o + 6] = f.next;
  u8[o + 7] = f.hopLimit ?? 64;
  u8.set(f.src, o + 8);
  u8.set(f.dst, o + 24);
}
