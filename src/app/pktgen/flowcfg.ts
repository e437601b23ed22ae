// From pktgen flags to a packet source: a UDP flow, or a fixed frame from a pcap file (-P).
import { readFileSync } from "node:fs";
import { parseMac } from "../../packet/ethernet.ts";
import { parsePcap } from "../../packet/pcap.ts";
import { UdpFlow } from "../../packet/udpflow.ts";
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
  return new UdpFlow({
    v6: cfg.af === 6,
    srcMac: cfg.srcMac ? macOf(cfg.srcMac, "S") : portMac,
    dstMac: macOf(cfg.dstMac, "D"),
    src: cfg.src,
    dst: cfg.dst,
    size: cfg.size,
    minSize: cfg.minSize,
    randomSrc: (cfg.options & OPT.RANDOM_SRC) !== 0,
    randomDst: (cfg.options & OPT.RANDOM_DST) !== 0,
    stampBytes,
    vnetHdr: cfg.vnetHdr,
    seed,
  });
}
