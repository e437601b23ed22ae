// pkt-gen's command line (getopt "46a:f:F:Nn:i:Il:d:s:D:S:b:c:o:p:T:w:WvR:XC:H:rP:zZAhBM:"),
// validated strictly: a bad value is an error, not atoi's 0.

import { parseMac } from "../../packet/ethernet.ts";
import { parseIPv4 } from "../../packet/ipv4.ts";
import { parseIPv6 } from "../../packet/ipv6.ts";
import type { AddrRange } from "../../packet/udpflow.ts";
import { parseVni, VNI_MAX } from "../../packet/vxlan.ts";

export const FUNCS = ["rx", "tx", "ping", "pong", "txseq", "rxseq"] as const;
export type Func = (typeof FUNCS)[number];
export const DEFAULT_BURST: Record<Func, number> = { rx: 512, tx: 512, ping: 1, pong: 1, txseq: 512, rxseq: 512 };
export const isSender = (f: Func) => f === "tx" || f === "txseq";
export const isReceiver = (f: Func) => f === "rx" || f === "rxseq";

/** -o bits (pkt-gen's OPT_*). */
export const OPT = {
  PREFETCH: 1,
  ACCESS: 2,
  COPY: 4,
  MEMCPY: 8,
  TS: 16,
  INDIRECT: 32,
  DUMP: 64,
  RUBBISH: 256,
  RANDOM_SRC: 512,
  RANDOM_DST: 1024,
  PPS_STATS: 2048,
  UPDATE_CSUM: 4096,
} as const;

export const MAX_PKTSIZE = 65536;

export interface Config {
  ifname: string;
  func: Func;
  npackets: number;
  size: number;
  minSize: number;
  burst: number;
  af: 4 | 6;
  srcSpec: string;
  dstSpec: string;
  src: AddrRange;
  dst: AddrRange;
  srcMac: string | null;
  dstMac: string;
  affinity: number;
  cpus: number;
  threads: number;
  reportMs: number;
  waitLink: number | null; // null: default for the port type
  forever: boolean;
  rate: number;
  options: number;
  normalize: boolean;
  frags: number;
  fragSize: number;
  verbose: number;
  vnetHdr: number;
  pcapFile: string | null;
  ringConf: string | null;
  framing: number;
  /** --vxlan: frames carried in VXLAN (outer MACs from -S/-D, inner ones given or defaults). */
  vxlan: VxlanOpt | null;
}

export interface VxlanOpt {
  vni: number;
  src: number;
  dst: number;
  innerSrcMac: string;
  innerDstMac: string;
}

import { UsageError } from "../cli.ts";

export { UsageError };

export const USAGE = `Usage: bun run pktgen -i port [-f tx|rx|txseq|rxseq|ping|pong] [options]
  -i port      shm:NAME{N | shm:NAME}N | netmap:eth0 | valeX:Y | xdp:IF[@Q] | packet:IF  (required)
  -f func      tx rx txseq rxseq ping pong (default rx)
  -n count     packets (tx/rx) or transactions (ping/pong), 0 = forever (default 0)
  -l len       frame size without CRC, 16..65536 (default 60); twice: second is the minimum of random sizes
  -b burst     packets per batch (default 512, ping/pong 1)
  -4 | -6      IPv4 (default) or IPv6
  -s ip[:port[-ip:port]]   source address/port or range (default 10.0.0.1:1234)
  -d ip[:port[-ip:port]]   destination address/port or range (default 10.1.0.1:1234)
  -S mac | -D mac          source (default: the port's) / destination (default ff:ff:ff:ff:ff:ff) MAC
  -z | -Z      random source / destination address and port per packet
  -R pps       rate limit       -T ms   report interval (default 1000)
  -w s         wait before start (default 2, 0 for vale and shm ports)
  -W           rx: exit when no packet arrives for 1 s
  -p threads   one ring per thread     -a cpu  pin threads from this cpu    -c cpus  cpus to use
  -F n | -M size           fragments (slots) per packet / fragment size
  -X dump packets  -v verbose  -N no unit normalisation  -A avg/stddev of pps  -B count framing+CRC in bps
  -H len virtio-net header (0, 10, 12)  -P file.pcap send its first packet  -r don't initialise buffers
  -C tx_slots[,rx_slots[,tx_rings[,rx_rings]]]  (deprecated: use @conf:)  -I indirect (VALE)
  --vxlan VNI,SRC_IP,DST_IP[,INNER_SRC_MAC,INNER_DST_MAC]
               send (tx, txseq) or expect (rx, rxseq) the frames inside VXLAN (RFC 7348, UDP 4789): -l is
               the inner frame's size, the wire's is 50 bytes more; -S/-D are the outer MACs
  -o bits      pkt-gen OPT_ bits: 2 access, 4/8 copy, 64 dump, 256 rubbish, 512/1024 random, 2048 stats;
               1 (prefetch) has no effect in JS, 4096 (update csum) is always on, 16 and 32 are refused
  --metrics HOST:PORT      Prometheus metrics and the web view there (loopback; --metrics-public: any)
  -h help`;

const WITH_ARG = new Set("afFnilbdsDScopTwRCHPM".split(""));
const NO_ARG = new Set("46NIWvXrzZAhB".split(""));

/** --vxlan VNI,SRC_IP,DST_IP[,INNER_SRC_MAC,INNER_DST_MAC] */
function parseVxlan(v: string): VxlanOpt {
  const p = v.split(",");
  if (p.length !== 3 && p.length !== 5)
    throw new UsageError(`--vxlan ${v}: expected VNI,SRC_IP,DST_IP[,INNER_SRC_MAC,INNER_DST_MAC]`);
  if (parseVni(p[0]) === null) throw new UsageError(`--vxlan ${v}: VNI ${p[0]} is not a number 0..${VNI_MAX}`);
  const ip = (s: string) => {
    try {
      return parseIPv4(s);
    } catch (e) {
      throw new UsageError(`--vxlan ${v}: ${(e as Error).message}`);
    }
  };
  const mac = (s: string) => {
    try {
      parseMac(s);
      return s;
    } catch (e) {
      throw new UsageError(`--vxlan ${v}: ${(e as Error).message}`);
    }
  };
  return {
    vni: Number(p[0]),
    src: ip(p[1]),
    dst: ip(p[2]),
    innerSrcMac: mac(p[3] ?? "02:00:00:00:00:01"),
    innerDstMac: mac(p[4] ?? "02:00:00:00:00:02"),
  };
}

function int(flag: string, v: string, min: number, max: number): number {
  if (!/^-?[0-9]+$/.test(v)) throw new UsageError(`-${flag} ${v}: not a whole number`);
  const n = Number(v);
  if (n < min || n > max) throw new UsageError(`-${flag} ${v}: out of range ${min}..${max}`);
  return n;
}

/** Parse `ip[:port[-ip[:port]]]` (IPv6 addresses as [addr]:port). */
export function parseRange(spec: string, af: 4 | 6, flag: string): AddrRange {
  const parts = af === 4 ? spec.split("-") : splitV6Range(spec);
  if (parts.length > 2 || !parts[0]) throw new UsageError(`-${flag} ${spec}: expected ip[:port[-ip:port]]`);
  const one = (p: string): { addr: number; hi?: Uint8Array; port?: number } => {
    let a = p,
      port: number | undefined;
    if (af === 4) {
      const i = p.indexOf(":");
      if (i >= 0) {
        a = p.slice(0, i);
        port = int(flag, p.slice(i + 1), 0, 65535);
      }
      try {
        return { addr: parseIPv4(a), port };
      } catch (e) {
        throw new UsageError(`-${flag}: ${(e as Error).message}`);
      }
    }
    const m = /^\[([^\]]+)\](?::([0-9]+))?$/.exec(p);
    if (m) {
      a = m[1];
      if (m[2] !== undefined) port = int(flag, m[2], 0, 65535);
    } else if (p.includes("[") || p.includes("]"))
      throw new UsageError(`-${flag} ${p}: write IPv6 with a port as [addr]:port`);
    let b: Uint8Array;
    try {
      b = parseIPv6(a);
    } catch (e) {
      throw new UsageError(`-${flag}: ${(e as Error).message}`);
    }
    return { addr: ((b[12] << 24) | (b[13] << 16) | (b[14] << 8) | b[15]) >>> 0, hi: b, port };
  };
  const s = one(parts[0]);
  const e = parts[1] ? one(parts[1]) : s;
  const port0 = s.port ?? 1234;
  const port1 = e.port ?? port0;
  if (af === 6 && parts[1] && !s.hi!.subarray(0, 12).every((x, i) => x === e.hi![i])) {
    throw new UsageError(`-${flag} ${spec}: an IPv6 range may only vary the last 32 bits`);
  }
  if (e.addr < s.addr || port1 < port0) throw new UsageError(`-${flag} ${spec}: range end is below its start`);
  return { v6: af === 6, start: s.addr, end: e.addr, hi6: s.hi, port0, port1 };
}

function splitV6Range(spec: string): string[] {
  // "[a]:p-[b]:q" or a bare address (no range possible without brackets)
  if (!spec.startsWith("[")) return [spec];
  const i = spec.indexOf("-[");
  return i < 0 ? [spec] : [spec.slice(0, i), spec.slice(i + 1)];
}

export function parseArgs(argv: string[]): Config | "help" {
  // src/dst ranges are parsed at the end, once -4/-6 and -s/-d are known
  const c: Omit<Config, "src" | "dst"> & Partial<Pick<Config, "src" | "dst">> = {
    ifname: "",
    func: "rx",
    npackets: 0,
    size: 60,
    minSize: 0,
    burst: 0,
    af: 4,
    srcSpec: "10.0.0.1",
    dstSpec: "10.1.0.1",
    srcMac: null,
    dstMac: "ff:ff:ff:ff:ff:ff",
    affinity: -1,
    cpus: 1,
    threads: 1,
    reportMs: 1000,
    waitLink: null,
    forever: true,
    rate: 0,
    options: 0,
    normalize: true,
    frags: 1,
    fragSize: 0,
    verbose: 0,
    vnetHdr: 0,
    pcapFile: null,
    ringConf: null,
    framing: 0,
    vxlan: null,
  };
  let sizeSeen = false,
    srcSet = false,
    dstSet = false;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--") {
      if (i + 1 < argv.length) throw new UsageError(`unexpected argument '${argv[i + 1]}'`);
      break;
    }
    if (a === "--vxlan" || a.startsWith("--vxlan=")) {
      const v = a === "--vxlan" ? argv[++i] : a.slice("--vxlan=".length);
      if (v === undefined) throw new UsageError("option --vxlan needs a value: VNI,SRC_IP,DST_IP");
      c.vxlan = parseVxlan(v);
      continue;
    }
    if (a.startsWith("--")) throw new UsageError(`unknown option ${a}`);
    if (!a.startsWith("-") || a === "-") throw new UsageError(`unexpected argument '${a}'`);
    for (let j = 1; j < a.length; j++) {
      const f = a[j];
      if (NO_ARG.has(f)) {
        switch (f) {
          case "4":
            c.af = 4;
            break;
          case "6":
            c.af = 6;
            break;
          case "N":
            c.normalize = false;
            break;
          case "I":
            c.options |= OPT.INDIRECT;
            break;
          case "W":
            c.forever = false;
            break;
          case "v":
            c.verbose++;
            break;
          case "X":
            c.options |= OPT.DUMP;
            break;
          case "r":
            c.options |= OPT.RUBBISH;
            break;
          case "z":
            c.options |= OPT.RANDOM_SRC;
            break;
          case "Z":
            c.options |= OPT.RANDOM_DST;
            break;
          case "A":
            c.options |= OPT.PPS_STATS;
            break;
          case "h":
            return "help";
          case "B":
            c.framing = 24 * 8;
            break; // 4 bytes CRC + 20 bytes preamble and gap
        }
        continue;
      }
      if (!WITH_ARG.has(f)) throw new UsageError(`unknown option -${f}`);
      let v = a.slice(j + 1);
      if (!v) {
        if (i + 1 >= argv.length) throw new UsageError(`option -${f} needs a value`);
        v = argv[++i];
      }
      j = a.length;
      switch (f) {
        case "i":
          c.ifname = v;
          break;
        case "f":
          if (!(FUNCS as readonly string[]).includes(v))
            throw new UsageError(`-f ${v}: unknown function (use ${FUNCS.join(", ")})`);
          c.func = v as Func;
          break;
        case "n":
          c.npackets = int(f, v, 0, Number.MAX_SAFE_INTEGER);
          break;
        case "F":
          c.frags = int(f, v, 1, 63);
          break;
        case "M":
          c.fragSize = int(f, v, 1, 65536);
          break;
        case "o":
          c.options |= int(f, v, 0, 0xffff);
          break;
        case "a":
          c.affinity = int(f, v, 0, 1023);
          break;
        case "l":
          if (sizeSeen) c.minSize = int(f, v, 16, MAX_PKTSIZE);
          else {
            c.size = int(f, v, 16, MAX_PKTSIZE);
            sizeSeen = true;
          }
          break;
        case "d":
          c.dstSpec = v;
          dstSet = true;
          break;
        case "s":
          c.srcSpec = v;
          srcSet = true;
          break;
        case "T":
          c.reportMs = int(f, v, 1, 3_600_000);
          break;
        case "w":
          c.waitLink = int(f, v, 0, 100);
          break;
        case "b":
          c.burst = int(f, v, 1, 65536);
          break;
        case "c":
          c.cpus = int(f, v, 0, 1024);
          break;
        case "p":
          c.threads = int(f, v, 1, 64);
          break;
        case "D":
          c.dstMac = v;
          break;
        case "S":
          c.srcMac = v;
          break;
        case "R":
          c.rate = int(f, v, 0, 1e10);
          break;
        case "C":
          c.ringConf = v;
          break;
        case "H":
          c.vnetHdr = int(f, v, 0, 12);
          if (![0, 10, 12].includes(c.vnetHdr))
            throw new UsageError(`-H ${v}: virtio-net header length must be 0, 10 or 12`);
          break;
        case "P":
          c.pcapFile = v;
          break;
      }
    }
  }
  if (!c.ifname) throw new UsageError("missing -i port (e.g. -i shm:pipe{0)");
  if (c.minSize && c.minSize > c.size)
    throw new UsageError(`bad minimum size ${c.minSize}: above the packet size ${c.size}`);
  if (c.options & OPT.INDIRECT)
    throw new UsageError(
      "-I (indirect buffers) works only on VALE ports over kernel netmap, which this backend cannot open",
    );
  // said, not ignored: timestamps ride in ping's payload (-f ping) but not in tx's
  if (c.options & OPT.TS)
    throw new UsageError("-o 16 (OPT_TS, timestamps in tx payloads) is not supported; -f ping stamps and measures RTT");
  if (!c.burst) c.burst = DEFAULT_BURST[c.func];
  if ((c.func === "ping" || c.func === "pong") && c.af === 6)
    throw new UsageError("ping/pong support IPv4 only (as pkt-gen)");
  if (c.af === 6) {
    // RFC 5180 benchmarking prefix, the v6 counterpart of pkt-gen's 10.x defaults
    if (!srcSet) c.srcSpec = "[2001:2::1]:1234";
    if (!dstSet) c.dstSpec = "[2001:2::2]:1234";
  }
  for (const [flag, mac] of [
    ["S", c.srcMac],
    ["D", c.dstMac],
  ] as const) {
    if (mac !== null)
      try {
        parseMac(mac);
      } catch (e) {
        throw new UsageError(`-${flag}: ${(e as Error).message}`);
      }
  }
  const src = parseRange(c.srcSpec, c.af, "s");
  const dst = parseRange(c.dstSpec, c.af, "d");
  if ((c.func === "ping" || c.func === "pong") && c.threads > 1)
    throw new UsageError(`-f ${c.func} runs on one thread, not -p ${c.threads}`);
  if (c.pcapFile && c.func !== "tx") throw new UsageError("-P (packet from a pcap file) works with -f tx only");
  if (c.vxlan && (c.func === "ping" || c.func === "pong" || c.pcapFile))
    throw new UsageError("--vxlan works with -f tx, txseq, rx and rxseq of generated UDP frames (not ping/pong or -P)");
  if (c.rate) {
    // pkt-gen: something every ~3 ms, never less than a burst of 1
    c.burst = Math.max(1, Math.min(c.burst, Math.floor(c.rate / 300)));
  }
  return { ...c, src, dst };
}
