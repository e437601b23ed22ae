// Ethernet II header at a byte offset of a buffer (smoltcp-style: a view, no copies).
export const ETH_HLEN = 14;
export const ETH_DST = 0;
export const ETH_SRC = 6;
export const ETH_TYPE = 12;
export const ETHERTYPE_IPV4 = 0x0800;
export const ETHERTYPE_ARP = 0x0806;
export const ETHERTYPE_IPV6 = 0x86dd;
export const ETHERTYPE_VLAN = 0x8100;

export function parseMac(s: string): Uint8Array {
  const m = /^([0-9a-fA-F]{1,2})(?::([0-9a-fA-F]{1,2})){5}$/.test(s) ? s.split(":") : null;
  if (!m) throw new Error(`bad MAC address '${s}' (expected aa:bb:cc:dd:ee:ff)`);
  return Uint8Array.from(m.map((h) => parseInt(h, 16)));
}

export function formatMac(b: Uint8Array, off = 0): string {
  const out: string[] = [];
  for (let i = 0; i < 6; i++) out.push(b[off + i].toString(16).padStart(2, "0"));
  return out.join(":");
}

export function writeEthernet(u8: Uint8Array, off: number, dst: Uint8Array, src: Uint8Array, type: number): void {
  u8.set(dst, off + ETH_DST);
  u8.set(src, off + ETH_SRC);
  u8[off + ETH_TYPE] = type >> 8;
  u8[off + ETH_TYPE + 1] = type & 0xff;
}

export function etherType(u8: Uint8Array, off: number): number {
  return (u8[off + ETH_TYPE] << 8) | u8[off + ETH_TYPE + 1];
}

/** Swap source and destination MAC in place (a reflector's first step). */
export function swapMacs(u8: Uint8Array, off: number): void {
  for (let i = 0; i < 6; i++) {
    const t = u8[off + i];
    u8[off + i] = u8[off + 6 + i];
    u8[off + 6 + i] = t;
  }
}

export function isMulticast(u8: Uint8Array, off: number): boolean {
  return (u8[off] & 1) === 1;
}
