// From pktgen flags to a packet source: a UDP flow (in VXLAN with --vxlan), or a fixed frame from a
// pcap file (-P).
import { readFileSync } from "node:fs";
import { checksum } from "../../packet/checksum.ts";
import { ETH_HLEN, parseMac } from "../../packet/ethernet.ts";
import { IP4, IPV4_HLEN, put16 } from "../../packet/ipv4.ts";
import { parsePcap } from "../../packet/pcap.ts";
import { UDP } from "../../packet/udp.ts";
import { UdpFlow } from "../../packet/udpflow.ts";
import { encapsulate, VXLAN_OVERHEAD } from "../../packet/vxlan.ts";
import { type Config, OPT, UsageError } from "./args.ts";

export interface FrameSource {
  readonly frame: Uint8Array;
  readonly varying: boolean;
  readonly fixedLen: number;
  readonly payOff: number;
  fill(u8: Uint8Array, off: number): void;
  emit(u8: Uint8Array, off: number, s0?: number, s1?: number, s2?: number, stampWords?: number): number;
}

class FixedFrame implements FrameSource {
  readonly varying = false;
  readonly fixedLen: number;
  readonly payOff = 0;
  constructor(readonly frame: Uint8Array) {
    this.fixedLen = frame.length;
  }
  fill(u8: Uint8Array, off: number) {
    u8.set(this.frame, off);
  }
  emit() {
    return this.fixedLen;
  }
}

export function macOf(s: string, flag: string): Uint8Array {
  try {
    return parseMac(s);
  } catch (e) {
    throw new UsageError(`-${flag}: ${(e as Error).message}`);
  }
}

export function frameSource(cfg: Config, portMac: Uint8Array, stampBytes: number, seed?: number): FrameSource {
  if (cfg.pcapFile) {
    let data: Uint8Array;
    try {
      data = readFileSync(cfg.pcapFile);
    } catch (e) {
      throw new UsageError(
        `-P ${cfg.pcapFile}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`,
      );
    }
    let p: ReturnType<typeof parsePcap>;
    try {
      p = parsePcap(data, cfg.pcapFile);
    } catch (e) {
      throw new UsageError(`-P ${(e as Error).message}`);
    }
    if (!p.records.length) throw new UsageError(`-P ${cfg.pcapFile}: the file holds no packet`);
    const r = p.records[0];
    const f = new Uint8Array(cfg.vnetHdr + r.caplen);
    f.set(data.subarray(r.offset, r.offset + r.caplen), cfg.vnetHdr);
    return new FixedFrame(f);
  }
  const outerSrc = cfg.srcMac ? macOf(cfg.srcMac, "S") : portMac,
    outerDst = macOf(cfg.dstMac, "D"),
    vx = cfg.vxlan;
  const flow = new UdpFlow({
    v6: cfg.af === 6,
    srcMac: vx ? parseMac(vx.innerSrcMac) : outerSrc,
    dstMac: vx ? parseMac(vx.innerDstMac) : outerDst,
    src: cfg.src,
    dst: cfg.dst,
    size: cfg.size,
    minSize: cfg.minSize,
    randomSrc: (cfg.options & OPT.RANDOM_SRC) !== 0,
    randomDst: (cfg.options & OPT.RANDOM_DST) !== 0,
    stampBytes,
    // with --vxlan the inner frame starts after room for the outer headers
    vnetHdr: cfg.vnetHdr + (vx ? VXLAN_OVERHEAD : 0),
    seed,
  });
  if (!vx) return flow;
  const inner = cfg.vnetHdr + VXLAN_OVERHEAD;
  encapsulate(flow.frame, inner, cfg.size, {
    dstMac: outerDst,
    srcMac: outerSrc,
    src: vx.src,
    dst: vx.dst,
    vni: vx.vni,
  });
  return cfg.minSize ? new VxlanLengths(flow, cfg.vnetHdr) : flow;
}

/** Random sizes (-l twice) inside VXLAN: the outer IPv4 and UDP lengths follow each inner frame. */
class VxlanLengths implements FrameSource {
  readonly frame: Uint8Array;
  readonly varying = true;
  readonly fixedLen: number;
  readonly payOff: number;
  constructor(
    private readonly flow: UdpFlow,
    private readonly hdr: number,
  ) {
    this.frame = flow.frame;
    this.fixedLen = flow.fixedLen;
    this.payOff = flow.payOff;
  }
  fill(u8: Uint8Array, off: number): void {
    this.flow.fill(u8, off);
  }
  emit(u8: Uint8Array, off: number, s0?: number, s1?: number, s2?: number, stampWords?: number): number {
    const total = this.flow.emit(u8, off, s0, s1, s2, stampWords);
    const ip = off + this.hdr + ETH_HLEN,
      ipLen = total - this.hdr - ETH_HLEN;
    put16(u8, ip + IP4.len, ipLen);
    put16(u8, ip + IP4.sum, 0);
    put16(u8, ip + IP4.sum, checksum(u8, ip, IPV4_HLEN));
    put16(u8, ip + IPV4_HLEN + UDP.len, ipLen - IPV4_HLEN);
    return total;
  }
}
