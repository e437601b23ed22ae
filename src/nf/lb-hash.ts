// netmap lb's packet hash (apps/lb/pkt_hash.c, pkt_hdr_hash(buf, 4, 'B')), so that a packet reaches
// the same pipe under bunmap's lb as under netmap's: a symmetric Toeplitz-style hash (key 0x506d
// repeated) over the IPv4 addresses (or the first four bytes of IPv6 ones) and TCP/UDP ports, with
// the seed added to the ports; through one VLAN tag, IP-in-IP, IPv6-in-IPv6 and GRE; other protocols
// hash their addresses with fixed ports, frames that are not IP the low four bytes of their MACs.
// Like lb's, it reads the headers as they are (no fragment or length checks beyond lb's own).

const SEED = 66; // 'B', the seed lb passes
const KEY = [0x50, 0x6d];
/** byteCache[i][b]: the hash contribution of byte value b at byte position i (0..3) of a 32-bit word
 * (signed words: the JIT keeps them, and their XORs, as int32s; the value is made unsigned once). */
const byteCache: Int32Array[] = (() => {
  const keyCache = new Uint32Array(96);
  let result = ((KEY[0] << 24) | (KEY[1] << 16) | (KEY[0] << 8) | KEY[1]) >>> 0;
  for (let i = 0, idx = 32; i < keyCache.length; i++, idx++) {
    keyCache[i] = result;
    const bit = ((KEY[(idx >> 3) & 1] << (idx % 8)) & 0x80) !== 0 ? 1 : 0;
    result = ((result << 1) | bit) >>> 0;
  }
  return [0, 1, 2, 3].map((i) => {
    const t = new Int32Array(256);
    for (let j = 0; j < 256; j++) {
      let v = 0;
      for (let k = 0, b = j; k < 8; k++, b <<= 1) if (b & 0x80) v ^= keyCache[8 * i + k];
      t[j] = v;
    }
    return t;
  });
})();
const [B0, B1, B2, B3] = byteCache;

/** lb's sym_hash_fn: addresses as host-order numbers, ports as lb adds the seed (16 bits each). */
function symHash(sip: number, dip: number, sp: number, dp: number): number {
  return (
    (B0[sip >>> 24] ^
      B1[(sip >>> 16) & 255] ^
      B2[(sip >>> 8) & 255] ^
      B3[sip & 255] ^
      B0[dip >>> 24] ^
      B1[(dip >>> 16) & 255] ^
      B2[(dip >>> 8) & 255] ^
      B3[dip & 255] ^
      B0[(sp >>> 8) & 255] ^
      B1[sp & 255] ^
      B2[(dp >>> 8) & 255] ^
      B3[dp & 255]) >>>
    0
  );
}

const be16 = (u8: Uint8Array, o: number) => (u8[o] << 8) | u8[o + 1];
const be32 = (u8: Uint8Array, o: number) => ((u8[o] << 24) | (u8[o + 1] << 16) | (u8[o + 2] << 8) | u8[o + 3]) >>> 0;
/** lb's "no ports": ntohs(0xFFFD) + seed and ntohs(0xFFFE) + seed, on a little-endian host. */
const NOPORT_S = (0xfdff + SEED) & 0xffff,
  NOPORT_D = (0xfeff + SEED) & 0xffff;
const portsOf = (u8: Uint8Array, l4: number, sd: number) => ((be16(u8, l4 + sd) + SEED) & 0xffff) >>> 0;

function ipv4Hash(u8: Uint8Array, ip: number): number {
  const hl = u8[ip] & 15;
  if (hl < 5 || hl * 4 > be16(u8, ip + 2)) return 0;
  const sip = be32(u8, ip + 12),
    dip = be32(u8, ip + 16),
    l4 = ip + hl * 4;
  switch (u8[ip + 9]) {
    case 6:
    case 17:
      return symHash(sip, dip, portsOf(u8, l4, 0), portsOf(u8, l4, 2));
    case 4:
      return ipv4Hash(u8, l4);
    case 47:
      return greHash(u8, l4);
    default:
      return symHash(sip, dip, NOPORT_S, NOPORT_D);
  }
}

function ipv6Hash(u8: Uint8Array, ip: number): number {
  const sip = be32(u8, ip + 8),
    dip = be32(u8, ip + 24),
    l4 = ip + 40;
  switch (u8[ip + 6]) {
    case 6:
    case 17:
      return symHash(sip, dip, portsOf(u8, l4, 0), portsOf(u8, l4, 2));
    case 4:
      return ipv4Hash(u8, l4);
    case 41:
      return ipv6Hash(u8, l4);
    case 47:
      return greHash(u8, l4);
    default:
      return symHash(sip, dip, NOPORT_S, NOPORT_D);
  }
}

/** Not IP: the low four bytes of each MAC, taken as lb takes them (byte 2 lowest: its ntohl of a
 * value it built in network order). */
const le32 = (u8: Uint8Array, o: number) => (u8[o] | (u8[o + 1] << 8) | (u8[o + 2] << 16) | (u8[o + 3] << 24)) >>> 0;
function macHash(u8: Uint8Array, eth: number): number {
  return symHash(le32(u8, eth + 8), le32(u8, eth + 2), NOPORT_S, NOPORT_D);
}

function greHash(u8: Uint8Array, gre: number): number {
  const f = u8[gre];
  const len = 4 + 2 * ((f & 1 ? 1 : 0) + (f & 2 ? 1 : 0) + (f & 4 ? 1 : 0) + (f & 8 ? 1 : 0));
  switch (be16(u8, gre + 2)) {
    case 0x0800:
      return ipv4Hash(u8, gre + len);
    case 0x86dd:
      return ipv6Hash(u8, gre + len);
    case 0x6558:
      return lbHash(u8, gre + len);
    default:
      return 0;
  }
}

/** The hash netmap's lb gives the Ethernet frame at u8[eth]; 0 is what lb counts as not IP. */
export function lbHash(u8: Uint8Array, eth: number): number {
  // the common case first, without the calls the general walk makes (its recursion for tunnels
  // keeps the JIT from inlining it): untagged IPv4 TCP/UDP with a sane header length
  if (u8[eth + 12] === 8 && u8[eth + 13] === 0) {
    const ip = eth + 14,
      hl = u8[ip] & 15,
      proto = u8[ip + 9];
    if ((proto === 6 || proto === 17) && hl >= 5 && hl * 4 <= ((u8[ip + 2] << 8) | u8[ip + 3])) {
      const l4 = ip + hl * 4;
      return symHash(
        (u8[ip + 12] << 24) | (u8[ip + 13] << 16) | (u8[ip + 14] << 8) | u8[ip + 15],
        (u8[ip + 16] << 24) | (u8[ip + 17] << 16) | (u8[ip + 18] << 8) | u8[ip + 19],
        (((u8[l4] << 8) | u8[l4 + 1]) + SEED) & 0xffff,
        (((u8[l4 + 2] << 8) | u8[l4 + 3]) + SEED) & 0xffff,
      );
    }
  }
  switch (be16(u8, eth + 12)) {
    case 0x0800:
      return ipv4Hash(u8, eth + 14);
    case 0x86dd:
      return ipv6Hash(u8, eth + 14);
    case 0x8100:
      switch (be16(u8, eth + 16)) {
        case 0x0800:
          return ipv4Hash(u8, eth + 18);
        case 0x86dd:
          return ipv6Hash(u8, eth + 18);
        default:
          return macHash(u8, eth);
      }
    default:
      return macHash(u8, eth);
  }
}
