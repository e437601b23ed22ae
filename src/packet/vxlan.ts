// VXLAN (RFC 7348): an Ethernet frame carried in UDP (port 4789) behind an 8-byte header whose I flag
// says the 24-bit VNI is valid. Views over bytes like the other packet modules: encapsulation writes
// the outer headers into the 50 bytes in front of an inner frame, decapsulation finds the inner frame
// in place. Nothing is copied or allocated per packet.

import { csumUpdate16 } from "./checksum.ts";
import { ETH_HLEN, ETHERTYPE_IPV4, writeEthernet } from "./ethernet.ts";
import { get16, IP_DF, IP4, IPDEFTTL, IPPROTO_TCP, IPPROTO_UDP, IPV4_HLEN, put16, writeIPv4 } from "./ipv4.ts";
import { fillUdpChecksum, UDP, UDP_HLEN, writeUdpHeader } from "./udp.ts";

/** IANA's VXLAN port (Linux's vxlan uses it unless `dstport` says otherwise). */
export const VXLAN_PORT = 4789;
export const VXLAN_HLEN = 8;
/** Field offsets: flags (I = 0x08 at byte 0), VNI in bytes 4..6, byte 7 reserved. */
export const VXLAN = { flags: 0, vni: 4 } as const;
export const VXLAN_I = 0x08;
export const VNI_MAX = 0xffffff;
/** A VNI written as text (decimal digits, 0..VNI_MAX), or null if the text is not one. */
export function parseVni(text: string): number | null {
  return /^[0-9]{1,8}$/.test(text) && Number(text) <= VNI_MAX ? Number(text) : null;
}
/** UDP + VXLAN headers: what a UDP socket's payload holds in front of the inner frame. */
export const VXLAN_UDP_HLEN = UDP_HLEN + VXLAN_HLEN;
/** Outer Ethernet + IPv4 + UDP + VXLAN: the bytes a frame grows by on the underlay (an IPv4 underlay
 * needs an MTU 50 bytes above the inner frame's, Ethernet header included: inner IP MTU + 50). */
export const VXLAN_OVERHEAD = ETH_HLEN + IPV4_HLEN + VXLAN_UDP_HLEN;
/** RFC 7348: the source port should come from a hash of the inner frame, within the dynamic range. */
export const SPORT_MIN = 49152;
export const SPORT_MAX = 65535;

/** Write the 8-byte VXLAN header (I flag, VNI) at o. */
export function writeVxlanHeader(u8: Uint8Array, o: number, vni: number): void {
  u8[o] = VXLAN_I;
  u8[o + 1] = 0;
  u8[o + 2] = 0;
  u8[o + 3] = 0;
  u8[o + 4] = vni >>> 16;
  u8[o + 5] = vni >>> 8;
  u8[o + 6] = vni;
  u8[o + 7] = 0;
}

/** The VNI of the VXLAN header at o, or -1 when its I flag is clear (no valid VNI). */
export function vxlanVni(u8: Uint8Array, o: number): number {
  if ((u8[o] & VXLAN_I) === 0) return -1;
  return (u8[o + 4] << 16) | (u8[o + 5] << 8) | u8[o + 6];
}

/**
 * A source port for the inner frame at `inner` (len bytes), stable per flow: a hash of the MACs and,
 * for IPv4, the addresses, protocol and (TCP, UDP) ports, spread over [SPORT_MIN, SPORT_MAX] (as RFC 7348 asks,
 * so the underlay's ECMP spreads flows without splitting one).
 */
export function flowSourcePort(u8: Uint8Array, inner: number, len: number): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < 12 && i < len; i++) h = Math.imul(h ^ u8[inner + i], 0x01000193);
  if (len >= ETH_HLEN + IPV4_HLEN && u8[inner + 12] === 0x08 && u8[inner + 13] === 0x00) {
    const ip = inner + ETH_HLEN;
    for (let i = IP4.src; i < IP4.dst + 4; i++) h = Math.imul(h ^ u8[ip + i], 0x01000193);
    const proto = u8[ip + IP4.proto];
    h = Math.imul(h ^ proto, 0x01000193);
    const l4 = ip + (u8[ip] & 0xf) * 4;
    // ports only where the first 4 bytes are ports (an ICMP checksum there would split one flow)
    if ((proto === IPPROTO_TCP || proto === IPPROTO_UDP) && l4 + 4 <= inner + len)
      for (let i = 0; i < 4; i++) h = Math.imul(h ^ u8[l4 + i], 0x01000193);
  }
  return SPORT_MIN + ((h >>> 0) % (SPORT_MAX - SPORT_MIN + 1));
}

/** The outer headers of an encapsulated frame (IPv4 underlay). Addresses are host-order numbers. */
export interface VxlanOuter {
  dstMac: Uint8Array;
  srcMac: Uint8Array;
  src: number;
  dst: number;
  vni: number;
  /** UDP source port (flowSourcePort by default). */
  sport?: number;
  dport?: number;
  ttl?: number;
  tos?: number;
  id?: number;
  /** Set the IPv4 don't-fragment bit (Linux's vxlan leaves it clear unless `df set`). */
  df?: boolean;
  /** Compute the UDP checksum over the whole frame (Linux's `udpcsum`, its default); RFC 7348 says
   * it SHOULD be zero, which is what is sent without this. */
  udpCsum?: boolean;
}

/**
 * Write the outer Ethernet, IPv4, UDP (checksum 0 unless `udpCsum`) and VXLAN headers into the VXLAN_OVERHEAD bytes in front of the inner frame at `inner` (len bytes).
 * Returns the offset of the outer frame, inner - VXLAN_OVERHEAD; its length is len + VXLAN_OVERHEAD.
 */
export function encapsulate(u8: Uint8Array, inner: number, len: number, o: VxlanOuter): number {
  const at = inner - VXLAN_OVERHEAD;
  if (at < 0) throw new RangeError(`vxlan: ${VXLAN_OVERHEAD} bytes of headroom needed before the inner frame`);
  writeEthernet(u8, at, o.dstMac, o.srcMac, ETHERTYPE_IPV4);
  const ip = at + ETH_HLEN;
  writeIPv4(u8, ip, {
    src: o.src,
    dst: o.dst,
    proto: IPPROTO_UDP,
    totalLen: IPV4_HLEN + VXLAN_UDP_HLEN + len,
    tos: o.tos ?? 0,
    id: o.id ?? 0,
    frag: o.df ? IP_DF : 0,
    ttl: o.ttl ?? IPDEFTTL,
  });
  const udp = ip + IPV4_HLEN;
  writeUdpHeader(u8, udp, o.sport ?? flowSourcePort(u8, inner, len), o.dport ?? VXLAN_PORT, VXLAN_UDP_HLEN + len);
  writeVxlanHeader(u8, udp + UDP_HLEN, o.vni);
  if (o.udpCsum) fillUdpChecksum(u8, ip, udp, VXLAN_UDP_HLEN + len);
  return at;
}

/**
 * The inner frame of the outer frame at `off` (len bytes) if it is VXLAN over IPv4 to `dport` with a
 * valid VNI, unfragmented: its offset (the VNI is vxlanVni(u8, offset - VXLAN_HLEN); its length is
 * off + len - offset). -1 otherwise.
 */
export function decapsulate(u8: Uint8Array, off: number, len: number, dport = VXLAN_PORT): number {
  if (len < VXLAN_OVERHEAD + ETH_HLEN) return -1;
  if (u8[off + 12] !== 0x08 || u8[off + 13] !== 0x00) return -1;
  const ip = off + ETH_HLEN;
  const ihl = (u8[ip] & 0xf) * 4;
  if (u8[ip] >> 4 !== 4 || ihl < IPV4_HLEN || u8[ip + IP4.proto] !== IPPROTO_UDP) return -1;
  if (((u8[ip + IP4.off] << 8) | u8[ip + IP4.off + 1]) & 0x3fff) return -1; // a fragment (MF or offset)
  const udp = ip + ihl;
  const inner = udp + VXLAN_UDP_HLEN;
  if (inner + ETH_HLEN > off + len) return -1;
  if (((u8[udp + UDP.dport] << 8) | u8[udp + UDP.dport + 1]) !== dport) return -1;
  return vxlanVni(u8, udp + UDP_HLEN) < 0 ? -1 : inner;
}

/** Set the outer IPv4 identification of an encapsulated frame at `at` and fix its header checksum. */
export function setOuterId(u8: Uint8Array, at: number, id: number): void {
  const ip = at + ETH_HLEN;
  put16(u8, ip + IP4.sum, csumUpdate16(get16(u8, ip + IP4.sum), get16(u8, ip + IP4.id), id));
  put16(u8, ip + IP4.id, id);
}
