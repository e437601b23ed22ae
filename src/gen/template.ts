// A stream's packet template, built with the packet layer from a description (Ethernet, one VLAN
// tag, IPv4 or IPv6, UDP, TCP or ICMP echo, or VXLAN around an inner packet of the same kinds), and
// the table of its header fields by name: where each is, how wide, which checksums it is in. The
// frame is built at the largest size the stream sends; shorter packets are its prefix with the
// length fields set. The innermost payload starts with the signature (signature.ts).
import { ETHERTYPE_IPV4, ETHERTYPE_IPV6, ETHERTYPE_VLAN, parseMac, writeEthernet } from "../packet/ethernet.ts";
import {
  IPPROTO_ICMP,
  IPPROTO_TCP,
  IPPROTO_UDP,
  IPV4_HLEN,
  isIPv4,
  parseIPv4,
  put16,
  writeIPv4,
} from "../packet/ipv4.ts";
import { IPV6_HLEN, parseIPv6, writeIPv6 } from "../packet/ipv6.ts";
import { TCP_HLEN } from "../packet/tcp.ts";
import { UDP_HLEN, writeUdpHeader } from "../packet/udp.ts";
import { VXLAN_HLEN, VXLAN_PORT, writeVxlanHeader } from "../packet/vxlan.ts";
import { SIG_LEN } from "./signature.ts";

export const IPPROTO_ICMPV6 = 58;

/** What a stream's packets are. Addresses as text; numbers for the rest. */
export interface PacketSpec {
  eth?: { src?: string; dst?: string };
  vlan?: { id: number; pcp?: number };
  ip: { src: string; dst: string; tos?: number; ttl?: number; id?: number };
  udp?: { sport?: number; dport?: number };
  tcp?: { sport?: number; dport?: number; seq?: number; ack?: number; flags?: number; win?: number };
  icmp?: { id?: number; seq?: number };
  vxlan?: { vni: number; sport?: number; inner: PacketSpec };
}

/** A header field: `bytes` big-endian bytes at `off` (bit fields: `bits` wide, `shift` up in a 16-bit word). */
export interface FieldLoc {
  off: number;
  bytes: number;
  bits: number;
  shift: number;
  /** A MAC or address (values given as text). */
  kind: "mac" | "ip4" | "ip6" | "num";
}

/** One IP header of the stack, and the transport after it. */
interface IpLayer {
  off: number;
  v6: boolean;
}

export interface Template {
  /** The frame at its largest size (the payload after the signature: a fixed pattern). */
  frame: Uint8Array;
  /** The shortest frame the headers and signature allow. */
  minLen: number;
  /** Every IP header (outer first): their length fields follow the frame's size, IPv4's checksum too. */
  ips: IpLayer[];
  /** Every UDP header: its length follows the size (the outer one of VXLAN keeps checksum 0). */
  udps: number[];
  /** The innermost transport: its checksum is kept right per packet. */
  l4: { kind: "udp" | "tcp" | "icmp" | "icmp6"; off: number; hdr: number; ip: IpLayer };
  /** Where the signature goes (the innermost payload's start). */
  sigOff: number;
  fields: Record<string, FieldLoc>;
}

export class TemplateError extends Error {}

const num = (v: unknown, what: string, max: number): number => {
  if (v === undefined) return -1;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max)
    throw new TemplateError(`${what}: expected a whole number 0..${max}, got ${JSON.stringify(v)}`);
  return v;
};

/** Build the template of `spec` at `maxLen` bytes (a frame length without FCS). */
export function buildTemplate(spec: PacketSpec, maxLen: number): Template {
  const frame = new Uint8Array(Math.max(maxLen, 60));
  const fields: Record<string, FieldLoc> = {};
  const ips: IpLayer[] = [];
  const udps: number[] = [];
  let l4: Template["l4"] | null = null;
  const field = (
    name: string,
    off: number,
    bytes: number,
    kind: FieldLoc["kind"] = "num",
    bits = bytes * 8,
    shift = 0,
  ) => {
    fields[name] = { off, bytes, bits, shift, kind };
  };

  const layer = (p: PacketSpec, at: number, prefix: string): number => {
    if (!p || typeof p !== "object")
      throw new TemplateError(`${prefix || "packet"}: expected { eth, ip, udp | tcp | icmp | vxlan }`);
    const mac = (s: string | undefined, def: string, what: string) => {
      try {
        return parseMac(s ?? def);
      } catch {
        throw new TemplateError(`${what}: expected a MAC like 02:00:00:00:00:01, got ${JSON.stringify(s)}`);
      }
    };
    const dst = mac(p.eth?.dst, "ff:ff:ff:ff:ff:ff", `${prefix}eth.dst`),
      src = mac(p.eth?.src, "02:00:00:00:00:01", `${prefix}eth.src`);
    field(`${prefix}eth.dst`, at, 6, "mac");
    field(`${prefix}eth.src`, at + 6, 6, "mac");
    if (!p.ip || typeof p.ip.src !== "string" || typeof p.ip.dst !== "string")
      throw new TemplateError(`${prefix}ip: expected { src: "198.18.0.1", dst: "198.18.1.1" } (IPv4 or IPv6)`);
    const v6 = !isIPv4(p.ip.src);
    if (v6 !== !isIPv4(p.ip.dst)) throw new TemplateError(`${prefix}ip: src and dst must both be IPv4 or both IPv6`);
    let o = at + 12;
    if (p.vlan) {
      if (prefix) throw new TemplateError(`${prefix}vlan: the inner packet of VXLAN carries no VLAN tag here`);
      if (typeof p.vlan !== "object" || p.vlan.id === undefined)
        throw new TemplateError("vlan: expected { id: 0..4095, pcp?: 0..7 }");
      const id = num(p.vlan.id, "vlan.id", 4095),
        pcp = Math.max(0, num(p.vlan.pcp, "vlan.pcp", 7));
      writeEthernet(frame, at, dst, src, ETHERTYPE_VLAN);
      put16(frame, o + 2, (pcp << 13) | id);
      field("vlan.id", o + 2, 2, "num", 12, 0);
      field("vlan.pcp", o + 2, 2, "num", 3, 13);
      o += 4;
      put16(frame, o, v6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4);
    } else writeEthernet(frame, at, dst, src, v6 ? ETHERTYPE_IPV6 : ETHERTYPE_IPV4);
    const ipOff = o + 2;
    const kinds = ["udp", "tcp", "icmp", "vxlan"].filter(
      (k) => (p as unknown as Record<string, unknown>)[k] !== undefined,
    );
    if (kinds.length !== 1)
      throw new TemplateError(
        `${prefix}: give exactly one of udp, tcp, icmp, vxlan${kinds.length ? ` (got ${kinds.join(", ")})` : ""}`,
      );
    if (kinds[0] === "vxlan" && prefix) throw new TemplateError(`${prefix}vxlan: one level of VXLAN only`);
    const proto = p.tcp ? IPPROTO_TCP : p.icmp ? (v6 ? IPPROTO_ICMPV6 : IPPROTO_ICMP) : IPPROTO_UDP;
    const ip: IpLayer = { off: ipOff, v6 };
    ips.push(ip);
    let l4off: number;
    if (v6) {
      let s: Uint8Array, d: Uint8Array;
      try {
        s = parseIPv6(p.ip.src);
        d = parseIPv6(p.ip.dst);
      } catch {
        throw new TemplateError(`${prefix}ip: ${p.ip.src} or ${p.ip.dst} is not an IPv6 address`);
      }
      writeIPv6(frame, ipOff, {
        src: s,
        dst: d,
        next: proto,
        payloadLen: 0,
        hopLimit: Math.max(0, num(p.ip.ttl, `${prefix}ip.ttl`, 255)) || 64,
      });
      const tc = Math.max(0, num(p.ip.tos, `${prefix}ip.tos`, 255));
      frame[ipOff] = 0x60 | (tc >> 4);
      frame[ipOff + 1] = (tc & 15) << 4;
      field(`${prefix}ip.src`, ipOff + 8 + 12, 4, "ip6"); // the low 32 bits
      field(`${prefix}ip.dst`, ipOff + 24 + 12, 4, "ip6");
      field(`${prefix}ip.ttl`, ipOff + 7, 1);
      field(`${prefix}ip.flow`, ipOff + 2, 2, "num", 16, 0); // the low 16 of the 20 bits
      l4off = ipOff + IPV6_HLEN;
    } else {
      let s: number, d: number;
      try {
        s = parseIPv4(p.ip.src);
        d = parseIPv4(p.ip.dst);
      } catch {
        throw new TemplateError(`${prefix}ip: ${p.ip.src} or ${p.ip.dst} is not an IPv4 address`);
      }
      const ttl = num(p.ip.ttl, `${prefix}ip.ttl`, 255),
        tos = num(p.ip.tos, `${prefix}ip.tos`, 255),
        id = num(p.ip.id, `${prefix}ip.id`, 65535);
      writeIPv4(frame, ipOff, {
        src: s,
        dst: d,
        proto,
        totalLen: 0,
        ttl: ttl < 0 ? 64 : ttl,
        tos: Math.max(0, tos),
        id: Math.max(0, id),
      });
      field(`${prefix}ip.tos`, ipOff + 1, 1);
      field(`${prefix}ip.id`, ipOff + 4, 2);
      field(`${prefix}ip.ttl`, ipOff + 8, 1);
      field(`${prefix}ip.src`, ipOff + 12, 4, "ip4");
      field(`${prefix}ip.dst`, ipOff + 16, 4, "ip4");
      l4off = ipOff + IPV4_HLEN;
    }
    if (p.udp || p.vxlan) {
      const u = p.udp ?? {};
      const sport = num(u.sport ?? p.vxlan?.sport, `${prefix}udp.sport`, 65535),
        dport = num(u.dport, `${prefix}udp.dport`, 65535);
      writeUdpHeader(frame, l4off, sport < 0 ? 1234 : sport, dport < 0 ? (p.vxlan ? VXLAN_PORT : 1234) : dport, 0);
      field(`${prefix}udp.sport`, l4off, 2);
      field(`${prefix}udp.dport`, l4off + 2, 2);
      udps.push(l4off);
      if (p.vxlan) {
        if (typeof p.vxlan !== "object" || p.vxlan.vni === undefined)
          throw new TemplateError("vxlan: expected { vni: 0..16777215, inner: { eth, ip, udp | tcp | icmp } }");
        writeVxlanHeader(frame, l4off + UDP_HLEN, num(p.vxlan.vni, "vxlan.vni", 0xffffff));
        field("vxlan.vni", l4off + UDP_HLEN + 4, 3);
        return layer(p.vxlan.inner, l4off + UDP_HLEN + VXLAN_HLEN, "inner.");
      }
      l4 = { kind: "udp", off: l4off, hdr: UDP_HLEN, ip };
      return l4off + UDP_HLEN;
    }
    if (p.tcp) {
      const t = p.tcp;
      put16(frame, l4off, Math.max(0, num(t.sport, `${prefix}tcp.sport`, 65535)) || 1234);
      put16(frame, l4off + 2, Math.max(0, num(t.dport, `${prefix}tcp.dport`, 65535)) || 80);
      const u32 = (o2: number, v: number) => {
        frame[o2] = v >>> 24;
        frame[o2 + 1] = (v >>> 16) & 255;
        frame[o2 + 2] = (v >>> 8) & 255;
        frame[o2 + 3] = v & 255;
      };
      u32(l4off + 4, Math.max(0, num(t.seq, `${prefix}tcp.seq`, 0xffffffff)));
      u32(l4off + 8, Math.max(0, num(t.ack, `${prefix}tcp.ack`, 0xffffffff)));
      frame[l4off + 12] = 5 << 4;
      const flags = num(t.flags, `${prefix}tcp.flags`, 255);
      frame[l4off + 13] = flags < 0 ? 0x10 : flags; // ACK unless told
      put16(frame, l4off + 14, Math.max(0, num(t.win, `${prefix}tcp.win`, 65535)) || 65535);
      for (const [n, o2, b] of [
        ["sport", 0, 2],
        ["dport", 2, 2],
        ["seq", 4, 4],
        ["ack", 8, 4],
        ["flags", 13, 1],
        ["win", 14, 2],
      ] as const)
        field(`${prefix}tcp.${n}`, l4off + o2, b);
      l4 = { kind: "tcp", off: l4off, hdr: TCP_HLEN, ip };
      return l4off + TCP_HLEN;
    }
    const ic = p.icmp ?? {};
    frame[l4off] = v6 ? 128 : 8; // echo request
    put16(frame, l4off + 4, Math.max(0, num(ic.id, `${prefix}icmp.id`, 65535)));
    put16(frame, l4off + 6, Math.max(0, num(ic.seq, `${prefix}icmp.seq`, 65535)));
    field(`${prefix}icmp.id`, l4off + 4, 2);
    field(`${prefix}icmp.seq`, l4off + 6, 2);
    l4 = { kind: v6 ? "icmp6" : "icmp", off: l4off, hdr: 8, ip };
    return l4off + 8;
  };

  const sigOff = layer(spec, 0, "");
  const minLen = Math.max(60, sigOff + SIG_LEN);
  if (frame.length < minLen)
    throw new TemplateError(`size ${maxLen} is too small: these headers and the signature need ${minLen}`);
  // the payload after the signature: a fixed pattern, so its checksum is known for every length
  for (let i = sigOff + SIG_LEN; i < frame.length; i++) frame[i] = (i * 7 + 1) & 255;
  return { frame, minLen, ips, udps, l4: l4 as unknown as Template["l4"], sigOff, fields };
}
