// Where a frame's headers are, for network functions: the Ethernet type behind up to two VLAN tags
// (802.1Q, 802.1ad), the IP header (IPv4 with options, IPv6 with its extension headers), and the
// transport header with its protocol; and a symmetric 5-tuple hash (both directions of a flow give
// the same value, as a load balancer over NF instances needs). One reusable object, filled in place:
// no allocation per packet.
import { ETH_HLEN, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN } from "./ethernet.ts";
import { IP4, IPPROTO_TCP, IPPROTO_UDP } from "./ipv4.ts";
import { IP6, IPV6_HLEN } from "./ipv6.ts";

export const ETHERTYPE_QINQ = 0x88a8;
/** IPv6 extension headers walked over to find the transport header (RFC 8200 4.1; AH RFC 4302). */
const HOP = 0,
  ROUTING = 43,
  FRAGMENT = 44,
  AH = 51,
  DSTOPTS = 60;
const IPPROTO_SCTP = 132;

export class Layers {
  /** Ethernet type after the VLAN tags. */
  ethType = 0;
  /** VLAN tags skipped (0..2). */
  vlans = 0;
  /** 4 or 6 when the frame carries IP, else 0. */
  family = 0;
  /** Offset of the IP header from the frame's start, or -1. */
  l3 = -1;
  /** Offset of the transport header, or -1 (no IP, truncated, or a fragment other than the first). */
  l4 = -1;
  /** The transport protocol (after IPv6 extension headers), or -1. */
  proto = -1;
  /** A fragment of a larger IP packet (the first one included). */
  fragment = false;

  /** Find the headers of the frame at u8[frame, frame + len); true when there is a transport header. */
  locate(u8: Uint8Array, frame: number, len: number): boolean {
    this.family = 0;
    this.l3 = this.l4 = this.proto = -1;
    this.fragment = false;
    this.vlans = 0;
    if (len < ETH_HLEN) {
      this.ethType = 0;
      return false;
    }
    let at = 12,
      type = (u8[frame + at] << 8) | u8[frame + at + 1];
    while ((type === ETHERTYPE_VLAN || type === ETHERTYPE_QINQ) && this.vlans < 2 && at + 6 <= len) {
      at += 4;
      this.vlans++;
      type = (u8[frame + at] << 8) | u8[frame + at + 1];
    }
    this.ethType = type;
    const l3 = at + 2;
    if (type === ETHERTYPE_IPV4) {
      if (l3 + 20 > len || u8[frame + l3] >> 4 !== 4) return false;
      const ihl = (u8[frame + l3] & 15) * 4;
      if (ihl < 20 || l3 + ihl > len) return false;
      this.family = 4;
      this.l3 = l3;
      this.proto = u8[frame + l3 + IP4.proto];
      const fo = ((u8[frame + l3 + IP4.off] << 8) | u8[frame + l3 + IP4.off + 1]) & 0x3fff; // MF + offset
      this.fragment = fo !== 0;
      if ((fo & 0x1fff) !== 0 || l3 + ihl >= len) return false; // a later fragment, or nothing after IP
      this.l4 = l3 + ihl;
      return true;
    }
    if (type !== ETHERTYPE_IPV6 || l3 + IPV6_HLEN > len || u8[frame + l3] >> 4 !== 6) return false;
    this.family = 6;
    this.l3 = l3;
    let next = u8[frame + l3 + IP6.next],
      off = l3 + IPV6_HLEN;
    for (let n = 0; n < 8; n++) {
      if (next === HOP || next === ROUTING || next === DSTOPTS || next === AH) {
        if (off + 8 > len) return false;
        const size = next === AH ? (u8[frame + off + 1] + 2) * 4 : (u8[frame + off + 1] + 1) * 8;
        next = u8[frame + off];
        off += size;
      } else if (next === FRAGMENT) {
        if (off + 8 > len) return false;
        this.fragment = true;
        const fragOff = ((u8[frame + off + 2] << 8) | u8[frame + off + 3]) >> 3;
        next = u8[frame + off];
        off += 8;
        if (fragOff !== 0) {
          this.proto = next;
          return false;
        }
      } else break;
    }
    this.proto = next;
    if (off >= len) return false;
    this.l4 = off;
    return true;
  }
}

const mix = (h: number, v: number) => Math.imul((h ^ v) >>> 0, 0x01000193);
/** Protocols whose first four transport bytes are the source and destination ports. */
const hasPorts = (p: number) => p === IPPROTO_TCP || p === IPPROTO_UDP || p === IPPROTO_SCTP;

/**
 * The flow's hash, the same for both directions: addresses and ports are taken in the order of the
 * smaller (address, port) end first. `layers` must have located the frame. Frames without IP hash
 * their MAC pair the same way. Fragments, the first one too, hash without ports, so every fragment of
 * a packet goes where the others go.
 */
export function flowHash(u8: Uint8Array, frame: number, layers: Layers): number {
  let h = 0x811c9dc5;
  if (layers.family === 0) {
    // no IP: the unordered pair of MACs
    let first = 0; // 0: destination first, 6: source first
    for (let i = 0; i < 6; i++) {
      const d = u8[frame + i],
        s = u8[frame + 6 + i];
      if (d !== s) {
        first = s < d ? 6 : 0;
        break;
      }
    }
    for (let i = 0; i < 6; i++) h = mix(h, u8[frame + first + i]);
    for (let i = 0; i < 6; i++) h = mix(h, u8[frame + (6 - first) + i]);
    return h >>> 0;
  }
  const ip = frame + layers.l3;
  const alen = layers.family === 4 ? 4 : 16;
  const src = ip + (layers.family === 4 ? IP4.src : IP6.src),
    dst = ip + (layers.family === 4 ? IP4.dst : IP6.dst);
  const ports = layers.l4 >= 0 && hasPorts(layers.proto) && !layers.fragment;
  const l4 = frame + layers.l4;
  const sp = ports ? (u8[l4] << 8) | u8[l4 + 1] : 0,
    dp = ports ? (u8[l4 + 2] << 8) | u8[l4 + 3] : 0;
  // which end is smaller: the first differing address byte, then the port
  let order = 0;
  for (let i = 0; i < alen && order === 0; i++) order = u8[src + i] - u8[dst + i];
  if (order === 0) order = sp - dp;
  const a = order <= 0 ? src : dst,
    b = order <= 0 ? dst : src;
  for (let i = 0; i < alen; i++) h = mix(h, u8[a + i]);
  for (let i = 0; i < alen; i++) h = mix(h, u8[b + i]);
  h = mix(h, order <= 0 ? sp : dp);
  h = mix(h, order <= 0 ? dp : sp);
  h = mix(h, layers.proto);
  return h >>> 0;
}
