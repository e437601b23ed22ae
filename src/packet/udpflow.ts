// A UDP flow generator: a template frame, then per packet only the fields that vary (addresses,
// ports, lengths, a stamp at the start of the payload) are written and both checksums recomputed
// in O(1) from precomputed partial sums. No allocation per packet.

import { sum16 } from "./checksum.ts";
import { ETH_HLEN, ETHERTYPE_IPV4, ETHERTYPE_IPV6, writeEthernet } from "./ethernet.ts";
import { IP_DF, IP4, IPDEFTTL, IPPROTO_UDP, IPTOS_LOWDELAY, IPV4_HLEN, put32, writeIPv4 } from "./ipv4.ts";
import { IP6, IPV6_HLEN, writeIPv6 } from "./ipv6.ts";
import { fillUdpChecksum, UDP, UDP_HLEN, writeUdpHeader } from "./udp.ts";

/** netmap pkt-gen's payload text. */
export const DEFAULT_PAYLOAD = "netmap pkt-gen DIRECT payload\nhttp://info.iet.unipi.it/~luigi/netmap/ ";

/** An address/port range. IPv4 addresses as u32; IPv6 as 16 bytes where the low 32 bits range. */
export interface AddrRange {
  v6: boolean;
  start: number; // IPv4 address, or the low 32 bits of an IPv6 one
  end: number;
  hi6?: Uint8Array; // IPv6: the 12 fixed high bytes (16 bytes, low 4 ignored)
  port0: number;
  port1: number;
}

export interface FlowConfig {
  v6: boolean;
  srcMac: Uint8Array;
  dstMac: Uint8Array;
  src: AddrRange;
  dst: AddrRange;
  /** Frame size without CRC (and without the virtio-net header). */
  size: number;
  /** >0: random size in [minSize, size). */
  minSize: number;
  randomSrc: boolean;
  randomDst: boolean;
  /** Bytes of payload the caller stamps per packet (0, 4 for txseq, 12 for ping). */
  stampBytes: number;
  /** virtio-net header length (0, 10 or 12) in front of the frame. */
  vnetHdr: number;
  seed?: number;
}

export class UdpFlow {
  readonly frame: Uint8Array; // hdr + max-size frame
  readonly maxLen: number;
  readonly varying: boolean;
  /** Offsets relative to the buffer start (virtio header included). */
  readonly ipOff: number;
  readonly udpOff: number;
  readonly payOff: number;
  private readonly v6: boolean;
  private readonly hdr: number;
  private readonly minSize: number;
  private readonly span: number;
  private readonly paySum: Uint32Array; // paySum[L] = sum16 of the first L payload bytes (stamp area as 0)
  private readonly ipConst: number; // IPv4 header sum without len and addresses
  private readonly fixed6Src: number; // IPv6: sum of the fixed high 12 address bytes
  private readonly fixed6Dst: number;
  private readonly src: AddrRange;
  private readonly dst: AddrRange;
  private readonly rs: boolean;
  private readonly rd: boolean;
  // current flow state
  private saddr: number;
  private sport: number;
  private daddr: number;
  private dport: number;
  private rnd: number;
  private dv: DataView = new DataView(new ArrayBuffer(0));
  private dvOf: Uint8Array | null = null;

  constructor(c: FlowConfig) {
    this.v6 = c.v6;
    this.hdr = c.vnetHdr;
    this.src = c.src;
    this.dst = c.dst;
    this.rs = c.randomSrc;
    this.rd = c.randomDst;
    const ipLen = c.v6 ? IPV6_HLEN : IPV4_HLEN;
    const min = ETH_HLEN + ipLen + UDP_HLEN + c.stampBytes;
    if (c.size < min)
      throw new Error(
        `packet size ${c.size} too small: a UDP/IPv${c.v6 ? 6 : 4} frame${c.stampBytes ? ` with a ${c.stampBytes}-byte stamp` : ""} needs ${min}`,
      );
    if (c.minSize && c.minSize < min) throw new Error(`minimum packet size ${c.minSize} too small (needs ${min})`);
    this.maxLen = c.size;
    this.minSize = c.minSize;
    this.span = c.minSize ? c.size - c.minSize : 0;
    this.ipOff = this.hdr + ETH_HLEN;
    this.udpOff = this.ipOff + ipLen;
    this.payOff = this.udpOff + UDP_HLEN;
    const f = (this.frame = new Uint8Array(this.hdr + c.size));
    // payload: the text repeated, last byte NUL (as pkt-gen)
    const text = new TextEncoder().encode(DEFAULT_PAYLOAD);
    for (let i = this.payOff; i < f.length; i++) f[i] = text[(i - this.payOff) % text.length];
    f[f.length - 1] = 0;
    const plenMax = f.length - this.payOff;
    this.paySum = new Uint32Array(plenMax + 1);
    for (let L = 1; L <= plenMax; L++) {
      const b = L - 1 < c.stampBytes ? 0 : f[this.payOff + L - 1];
      this.paySum[L] = this.paySum[L - 1] + ((L - 1) & 1 ? b : b << 8);
    }
    writeEthernet(f, this.hdr, c.dstMac, c.srcMac, c.v6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4);
    this.saddr = c.src.start;
    this.sport = c.src.port0;
    this.daddr = c.dst.start;
    this.dport = c.dst.port0;
    this.rnd = (c.seed ?? Date.now() ^ (Math.random() * 0x7fffffff)) | 0 || 1;
    if (c.v6) {
      const s = new Uint8Array(16),
        d = new Uint8Array(16);
      s.set(c.src.hi6!.subarray(0, 12));
      put32(s, 12, this.saddr);
      d.set(c.dst.hi6!.subarray(0, 12));
      put32(d, 12, this.daddr);
      writeIPv6(f, this.ipOff, { src: s, dst: d, next: IPPROTO_UDP, payloadLen: c.size - ETH_HLEN - IPV6_HLEN });
      this.fixed6Src = sum16(f, this.ipOff + 8, 12);
      this.fixed6Dst = sum16(f, this.ipOff + 24, 12);
      this.ipConst = 0;
    } else {
      writeIPv4(f, this.ipOff, {
        src: this.saddr,
        dst: this.daddr,
        proto: IPPROTO_UDP,
        totalLen: c.size - ETH_HLEN,
        tos: IPTOS_LOWDELAY,
        frag: IP_DF,
        ttl: IPDEFTTL,
      });
      // header words that never change: ver/ihl/tos, id, frag, ttl/proto
      this.ipConst = ((0x45 << 8) | IPTOS_LOWDELAY) + IP_DF + ((IPDEFTTL << 8) | IPPROTO_UDP);
      this.fixed6Src = this.fixed6Dst = 0;
    }
    writeUdpHeader(f, this.udpOff, this.sport, this.dport, c.size - this.udpOff + this.hdr);
    fillUdpChecksum(f, this.ipOff, this.udpOff, c.size - this.udpOff + this.hdr, c.v6);
    this.varying =
      c.minSize > 0 ||
      c.randomSrc ||
      c.randomDst ||
      c.stampBytes > 0 ||
      c.src.start !== c.src.end ||
      c.src.port0 !== c.src.port1 ||
      c.dst.start !== c.dst.end ||
      c.dst.port0 !== c.dst.port1;
  }

  /** Copy the whole template into a buffer (done once per buffer: NS_BUF_CHANGED or first use). */
  fill(u8: Uint8Array, off: number): void {
    u8.set(this.frame, off);
  }

  /** xorshift32 on an int32 state (a double state is twice as slow in JSC); returns uint32. */
  private rand(): number {
    let x = this.rnd | 0;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    this.rnd = x;
    return x >>> 0;
  }

  /**
   * Write the next packet's varying fields into a buffer holding the template and return its length
   * (virtio header included). s0..s2: stamp words (big endian) at payload offsets 0, 4, 8.
   */
  emit(u8: Uint8Array, off: number, s0 = 0, s1 = 0, s2 = 0, stampWords = 0): number {
    // big-endian stores through a DataView on the caller's buffer (cached: one buffer per ring)
    let dv = this.dv;
    if (this.dvOf !== u8) {
      this.dvOf = u8;
      dv = this.dv = new DataView(u8.buffer, u8.byteOffset, u8.byteLength);
    }
    // next addresses: port first, then address (pkt-gen's update_addresses), or random
    let sa = this.saddr,
      sp = this.sport,
      da = this.daddr,
      dp = this.dport;
    if (this.rs) {
      sa = this.rand();
      sp = this.rand() & 0xffff;
    }
    if (this.rd) {
      da = this.rand();
      dp = this.rand() & 0xffff;
    }
    // multiply-shift instead of %: integer-only, span <= 65536 keeps the product below 2^32
    const len = this.span ? this.minSize + (((this.rand() >>> 16) * this.span) >>> 16) : this.maxLen;
    const ip = off + this.ipOff,
      udp = off + this.udpOff,
      pay = off + this.payOff;
    const ulen = len + this.hdr - this.udpOff;
    const addrs = (sa >>> 16) + (sa & 0xffff) + (da >>> 16) + (da & 0xffff);
    let s = addrs;
    if (this.v6) {
      // the low 32 bits of each address vary (the ranges' last word)
      dv.setUint32(ip + IP6.src + 12, sa);
      dv.setUint32(ip + IP6.dst + 12, da);
      dv.setUint16(ip + IP6.plen, ulen);
      s += this.fixed6Src + this.fixed6Dst;
    } else {
      dv.setUint32(ip + IP4.src, sa);
      dv.setUint32(ip + IP4.dst, da);
      const tl = len - ETH_HLEN;
      dv.setUint16(ip + IP4.len, tl);
      let h = this.ipConst + tl + addrs;
      h = (h & 0xffff) + (h >>> 16);
      h = (h & 0xffff) + (h >>> 16);
      dv.setUint16(ip + IP4.sum, ~h & 0xffff);
    }
    dv.setUint16(udp + UDP.sport, sp);
    dv.setUint16(udp + UDP.dport, dp);
    dv.setUint16(udp + UDP.len, ulen);
    s += IPPROTO_UDP + ulen + sp + dp + ulen + this.paySum[ulen - UDP_HLEN];
    if (stampWords > 0) {
      dv.setUint32(pay, s0);
      s += (s0 >>> 16) + (s0 & 0xffff);
    }
    if (stampWords > 1) {
      dv.setUint32(pay + 4, s1);
      s += (s1 >>> 16) + (s1 & 0xffff);
    }
    if (stampWords > 2) {
      dv.setUint32(pay + 8, s2);
      s += (s2 >>> 16) + (s2 & 0xffff);
    }
    s = (s & 0xffff) + (s >>> 16); // s < 2^32: two folds suffice
    s = (s & 0xffff) + (s >>> 16);
    const c = ~s & 0xffff;
    dv.setUint16(udp + UDP.sum, c === 0 ? 0xffff : c);
    // advance the ranges for the next packet
    if (!this.rs) {
      if (sp < this.src.port1) this.sport = sp + 1;
      else {
        this.sport = this.src.port0;
        this.saddr = sa < this.src.end ? sa + 1 : this.src.start;
      }
    }
    if (!this.rd) {
      if (dp < this.dst.port1) this.dport = dp + 1;
      else {
        this.dport = this.dst.port0;
        this.daddr = da < this.dst.end ? da + 1 : this.dst.start;
      }
    }
    return len + this.hdr;
  }

  /** Length of every packet when nothing varies. */
  get fixedLen(): number {
    return this.maxLen + this.hdr;
  }
}
