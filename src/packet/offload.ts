// What a NIC does with the offload requests a frame carries (a partial checksum, TCP segmentation),
// done in software for a port that must put finished, MTU-sized frames on the wire (a VXLAN uplink fed
// by containers that keep TSO on). The caller reads the request (virtio-net header); these functions
// only touch bytes. Ethernet with at most one VLAN tag; IPv4 or IPv6 without extension headers.
import { checksum, finish, fold, sum16 } from "./checksum.ts";
import { ETH_HLEN, ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN } from "./ethernet.ts";
import { get16, get32, IP4, IPPROTO_TCP, IPPROTO_UDP, put16, put32 } from "./ipv4.ts";
import { IP6, IPV6_HLEN } from "./ipv6.ts";
import { TCP, TCP_CWR, TCP_FIN, TCP_PSH, tcpHeaderLen } from "./tcp.ts";
import { UDP } from "./udp.ts";

/** Where the network header starts: after the Ethernet header and one VLAN tag, if any. */
export function l3Offset(u8: Uint8Array, frame: number): number {
  return get16(u8, frame + 12) === ETHERTYPE_VLAN ? ETH_HLEN + 4 : ETH_HLEN;
}

/**
 * Finish a partial checksum (virtio-net NEEDS_CSUM): the field at start + offset holds the
 * pseudo-header sum; the checksum covers everything from `start` to the frame's end.
 */
export function completeChecksum(u8: Uint8Array, frame: number, len: number, start: number, offset: number): void {
  const at = frame + start + offset;
  let c = finish(sum16(u8, frame + start, len - start));
  if (c === 0 && offset === UDP.sum) c = 0xffff; // 0 means "no checksum" in UDP
  put16(u8, at, c);
}

/** Length of the Ethernet + IP + TCP headers of a TCP frame, or -1 when it is not one this can segment. */
export function tcpHeadersLen(u8: Uint8Array, frame: number, len: number): number {
  const l3 = l3Offset(u8, frame),
    ip = frame + l3,
    type = get16(u8, ip - 2);
  let l4: number;
  if (type === ETHERTYPE_IPV4 && u8[ip] >> 4 === 4 && u8[ip + IP4.proto] === IPPROTO_TCP) l4 = l3 + (u8[ip] & 0xf) * 4;
  else if (type === ETHERTYPE_IPV6 && u8[ip] >> 4 === 6 && u8[ip + IP6.next] === IPPROTO_TCP) l4 = l3 + IPV6_HLEN;
  else return -1;
  const end = l4 + tcpHeaderLen(u8, frame + l4);
  return end <= len ? end : -1;
}

/** How many segments of at most `mss` payload bytes the TCP frame carries. */
export function tcpSegmentCount(len: number, hlen: number, mss: number): number {
  return Math.max(1, Math.ceil((len - hlen) / mss));
}

/**
 * Write the headers of segment i of a TCP frame (len bytes, headers hlen bytes, as tcpHeadersLen)
 * cut at `mss` payload bytes, at `out` (hlen bytes): IP lengths, IPv4 id + i and header checksum,
 * sequence number, FIN/PSH on the last segment only, CWR on the first only, the TCP checksum over
 * the segment's payload (u8[frame + hlen + i*mss, + the returned length)). Returns that length.
 */
export function writeTcpSegment(
  u8: Uint8Array,
  frame: number,
  len: number,
  hlen: number,
  mss: number,
  i: number,
  out: number,
): number {
  const n = tcpSegmentCount(len, hlen, mss),
    plen = Math.min(mss, len - hlen - i * mss);
  u8.copyWithin(out, frame, frame + hlen);
  patchTcpSegment(u8, out, hlen, n, i, mss, plen, frame + hlen + i * mss);
  return plen;
}

/**
 * The header work of writeTcpSegment on headers already copied to `out` (hlen bytes), for segment
 * i of n carrying plen payload bytes found at u8[payload...]: for a caller that builds the segment
 * in another region (headers, then the payload right after them, then this).
 */
export function patchTcpSegment(
  u8: Uint8Array,
  out: number,
  hlen: number,
  n: number,
  i: number,
  mss: number,
  plen: number,
  payload: number,
): void {
  const ip = out + l3Offset(u8, out),
    v6 = u8[ip] >> 4 === 6,
    l4 = v6 ? ip + IPV6_HLEN : ip + (u8[ip] & 0xf) * 4,
    thl = out + hlen - l4,
    tcpLen = thl + plen;
  if (v6) put16(u8, ip + IP6.plen, tcpLen);
  else {
    put16(u8, ip + IP4.len, l4 - ip + tcpLen);
    put16(u8, ip + IP4.id, (get16(u8, ip + IP4.id) + i) & 0xffff);
    put16(u8, ip + IP4.sum, 0);
    put16(u8, ip + IP4.sum, checksum(u8, ip, l4 - ip));
  }
  put32(u8, l4 + TCP.seq, (get32(u8, l4 + TCP.seq) + i * mss) >>> 0);
  let flags = u8[l4 + TCP.flags];
  if (i < n - 1) flags &= ~(TCP_FIN | TCP_PSH);
  if (i > 0) flags &= ~TCP_CWR;
  u8[l4 + TCP.flags] = flags;
  put16(u8, l4 + TCP.sum, 0);
  const pseudo = v6
    ? sum16(u8, ip + IP6.src, 32, IPPROTO_TCP + tcpLen)
    : sum16(u8, ip + IP4.src, 8, IPPROTO_TCP + tcpLen);
  // the TCP header is a whole number of 32-bit words: the payload's words line up after it
  put16(u8, l4 + TCP.sum, finish(sum16(u8, payload, plen, sum16(u8, l4, thl, pseudo))));
}

/** Where partialChecksum found the field: csum_start and csum_offset, as a virtio-net header says them,
 * and where the checksummed bytes end (Ethernet padding excluded). */
export const PARTIAL = { start: 0, offset: 0, end: 0 };

/**
 * True if the TCP or UDP checksum of the frame is still partial: the field holds only the
 * pseudo-header sum and the whole does not verify. That is what a frame the kernel checksums "later"
 * (CHECKSUM_PARTIAL) looks like when it crosses a veth inside a tunnel, where no NIC finishes it.
 * Costs an 8-byte sum for frames that carry a finished checksum (the field rarely equals the seed).
 * Sets PARTIAL (offsets from the frame) when true.
 */
export function partialChecksum(u8: Uint8Array, frame: number, len: number): boolean {
  const l3 = l3Offset(u8, frame),
    ip = frame + l3,
    type = get16(u8, ip - 2);
  let l4: number, l4len: number, proto: number, pseudo: number;
  if (type === ETHERTYPE_IPV4 && u8[ip] >> 4 === 4) {
    if (get16(u8, ip + IP4.off) & 0x3fff) return false; // a fragment
    l4 = l3 + (u8[ip] & 0xf) * 4;
    l4len = get16(u8, ip + IP4.len) - (l4 - l3);
    proto = u8[ip + IP4.proto];
    pseudo = sum16(u8, ip + IP4.src, 8, proto + l4len);
  } else if (type === ETHERTYPE_IPV6 && u8[ip] >> 4 === 6) {
    l4 = l3 + IPV6_HLEN;
    l4len = get16(u8, ip + IP6.plen);
    proto = u8[ip + IP6.next];
    pseudo = sum16(u8, ip + IP6.src, 32, proto + l4len);
  } else return false;
  const offset = proto === IPPROTO_TCP ? TCP.sum : proto === IPPROTO_UDP ? UDP.sum : -1;
  if (offset < 0 || l4 + l4len > len || l4len < offset + 2) return false;
  if (get16(u8, frame + l4 + offset) !== fold(pseudo)) return false;
  if (finish(sum16(u8, frame + l4, l4len, pseudo)) === 0) return false; // a finished checksum that equals the seed
  PARTIAL.start = l4;
  PARTIAL.offset = offset;
  PARTIAL.end = l4 + l4len;
  return true;
}

/** What asTso found: the virtio-net GSO request that describes a received TCP super-frame. */
export const TSO = { v6: false, hdrLen: 0, mss: 0, start: 0 };

/**
 * A received TCP frame longer than the MTU (a sender's GSO frame that crossed a veth whole, or one
 * merged by GRO) described as a TSO request: headers length, segment size for `mtu`, where TCP
 * starts. False when it is not TCP this can describe. Sets TSO when true.
 */
export function asTso(u8: Uint8Array, frame: number, len: number, mtu: number): boolean {
  const hlen = tcpHeadersLen(u8, frame, len);
  if (hlen < 0) return false;
  const l3 = l3Offset(u8, frame),
    ip = frame + l3;
  TSO.v6 = u8[ip] >> 4 === 6;
  TSO.hdrLen = hlen;
  TSO.start = TSO.v6 ? l3 + IPV6_HLEN : l3 + (u8[ip] & 0xf) * 4;
  TSO.mss = mtu - (hlen - l3);
  return TSO.mss > 0;
}
