// The router NF of the "AF_XDP test environment inside Docker" example, on bunmap ports: traffic
// from the client goes to the server and back, the router standing in the middle as both ends'
// peer: destination IP/MAC rewritten to the other side, source IP/MAC set to the router's, TTL
// decremented, IPv4 and UDP/TCP checksums patched incrementally (RFC 1624). It answers ARP for its
// own IP and resolves the other side's MAC by ARP. Everything here works on a frame in place.
// `process` is the NF on the runner (one port: everything on it; two: client side, server side).

import { ARP_REPLY, ARP_REQUEST, arpOp, arpSenderIp, arpTargetIp, isArp, writeArp } from "../packet/arp.ts";
import { csumUpdate16, csumUpdate32 } from "../packet/checksum.ts";
import { ETH_HLEN, ETHERTYPE_IPV4 } from "../packet/ethernet.ts";
import { get32, IP4, IPPROTO_TCP, IPPROTO_UDP, put32 } from "../packet/ipv4.ts";
import { drop, type Packet } from "./runner.ts";

/** Why the router drops, by drop(k) index. */
export const ROUTER_DROPS = [
  "not IPv4",
  "not between client and server via the router",
  "waiting for ARP",
  "TTL expired",
  "ARP with nothing to answer",
] as const;

export interface NfConfig {
  routerIp: number;
  clientIp: number;
  serverIp: number;
}

export enum Verdict {
  Drop = 0,
  Forward = 1,
  Reply = 2,
}

const BCAST = new Uint8Array(6).fill(255);
const ZERO = new Uint8Array(6);

export class RouterNf {
  /** Resolved MACs of client and server (null until an ARP reply or a packet from them). */
  readonly neigh = new Map<number, Uint8Array>();
  readonly stats = { forwarded: 0, arpAnswered: 0, arpLearned: 0, dropped: 0, noNeighbour: 0 };
  /** The last Drop's reason (an index of ROUTER_DROPS). */
  why = 0;

  /** `ports`: 1 (client, server and router on one segment) or 2 (the client's side, the server's). */
  constructor(
    readonly cfg: NfConfig,
    readonly mac: Uint8Array,
    readonly ports = 1,
  ) {}

  /** The port a host is behind. */
  sideOf(ip: number): number {
    return this.ports === 2 && ip === this.cfg.serverIp ? 1 : 0;
  }

  /** The NF: a forwarded frame leaves by its new destination's side, an ARP reply where it came in. */
  readonly process = (p: Packet): number => {
    const v = this.handle(p.u8, p.off, p.len);
    if (v === Verdict.Forward) return this.sideOf(get32(p.u8, p.off + ETH_HLEN + IP4.dst));
    return v === Verdict.Reply ? p.input : drop(this.why);
  };

  /** Which host a packet from `src` goes to: the other one; 0 if it is neither. */
  peerOf(src: number): number {
    return src === this.cfg.clientIp ? this.cfg.serverIp : src === this.cfg.serverIp ? this.cfg.clientIp : 0;
  }

  /**
   * Handle one frame in place. Forward: the frame now goes to `peerOf(source)`; Reply: it was an ARP
   * request for us, turned into the reply, to go back out; Drop: consumed or not ours.
   */
  handle(u8: Uint8Array, off: number, len: number): Verdict {
    if (isArp(u8, off, len)) return this.arp(u8, off);
    if (len < ETH_HLEN + 20 || ((u8[off + 12] << 8) | u8[off + 13]) !== ETHERTYPE_IPV4 || u8[off + 14] >> 4 !== 4) {
      this.why = 0;
      this.stats.dropped++;
      return Verdict.Drop;
    }
    const ip = off + ETH_HLEN,
      ihl = (u8[ip] & 15) * 4;
    const src = get32(u8, ip + 12),
      dst = get32(u8, ip + 16);
    const to = this.peerOf(src);
    if (!to || dst !== this.cfg.routerIp) {
      this.why = 1;
      this.stats.dropped++;
      return Verdict.Drop;
    }
    this.learn(src, u8, off + 6);
    const mac = this.neigh.get(to);
    if (!mac) {
      this.why = 2;
      this.stats.noNeighbour++;
      return Verdict.Drop;
    } // the caller sends an ARP request (see needArp)
    if (u8[ip + 8] <= 1) {
      this.why = 3;
      this.stats.dropped++;
      return Verdict.Drop;
    } // TTL expired
    // TTL - 1: the 16-bit word (ttl, proto) changes
    let csum = (u8[ip + 10] << 8) | u8[ip + 11];
    const ttlWord = (u8[ip + 8] << 8) | u8[ip + 9];
    u8[ip + 8]--;
    csum = csumUpdate16(csum, ttlWord, ttlWord - 0x100);
    // addresses: (src, dst) -> (router, peer)
    const newSrc = this.cfg.routerIp,
      newDst = to;
    csum = csumUpdate32(csumUpdate32(csum, src, newSrc), dst, newDst);
    u8[ip + 10] = csum >> 8;
    u8[ip + 11] = csum & 255;
    put32(u8, ip + 12, newSrc);
    put32(u8, ip + 16, newDst);
    // the pseudo-header changed too: UDP (unless its checksum is off) and TCP
    const proto = u8[ip + 9],
      l4 = ip + ihl;
    const sumAt = proto === IPPROTO_UDP ? l4 + 6 : proto === IPPROTO_TCP ? l4 + 16 : -1;
    if (sumAt > 0 && sumAt + 2 <= off + len) {
      const old = (u8[sumAt] << 8) | u8[sumAt + 1];
      if (!(proto === IPPROTO_UDP && old === 0)) {
        let c = csumUpdate32(csumUpdate32(old, src, newSrc), dst, newDst);
        if (proto === IPPROTO_UDP && c === 0) c = 0xffff;
        u8[sumAt] = c >> 8;
        u8[sumAt + 1] = c & 255;
      }
    }
    u8.set(mac, off);
    u8.set(this.mac, off + 6);
    this.stats.forwarded++;
    return Verdict.Forward;
  }

  private learn(ip: number, u8: Uint8Array, macOff: number): void {
    if (ip !== this.cfg.clientIp && ip !== this.cfg.serverIp) return;
    const m = this.neigh.get(ip);
    if (
      m &&
      m[0] === u8[macOff] &&
      m[5] === u8[macOff + 5] &&
      m[1] === u8[macOff + 1] &&
      m[2] === u8[macOff + 2] &&
      m[3] === u8[macOff + 3] &&
      m[4] === u8[macOff + 4]
    )
      return;
    this.neigh.set(ip, u8.slice(macOff, macOff + 6)); // control path: a neighbour appears or moves
    this.stats.arpLearned++;
  }

  private arp(u8: Uint8Array, off: number): Verdict {
    const op = arpOp(u8, off),
      spa = arpSenderIp(u8, off),
      tpa = arpTargetIp(u8, off);
    this.learn(spa, u8, off + 14 + 8);
    if (op === ARP_REQUEST && tpa === this.cfg.routerIp) {
      const sha = u8.slice(off + 14 + 8, off + 14 + 14);
      writeArp(u8, off, ARP_REPLY, this.mac, this.cfg.routerIp, sha, spa, sha);
      this.stats.arpAnswered++;
      return Verdict.Reply;
    }
    this.why = 4;
    return Verdict.Drop;
  }

  /** The IPs whose MAC is still unknown (ask for them). */
  unresolved(): number[] {
    return [this.cfg.clientIp, this.cfg.serverIp].filter((ip) => !this.neigh.has(ip));
  }

  /** Write an ARP request for `ip` into a buffer; returns the frame length (60, padded). */
  arpRequest(u8: Uint8Array, off: number, ip: number): number {
    const n = writeArp(u8, off, ARP_REQUEST, this.mac, this.cfg.routerIp, ZERO, ip, BCAST);
    u8.fill(0, off + n, off + 60);
    return 60;
  }
}
