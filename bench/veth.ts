// Benchmark (issue 3): transmit rate over a veth pair, bunmap pktgen on packet: and xdp: against C
// tools on the same setup in the same run: trafgen (netsniff-ng, AF_PACKET TX_RING) and dpdk-testpmd
// txonly (net_af_packet, net_af_xdp vdevs). The receiver is a counting XDP_DROP on the peer
// (ffi/bpf.ts); every tool is rated by that counter, sampled every 50 ms, over the interval in
// which it moved, so start-up costs do not count. Median of RUNS runs, interleaved.
//   bun bench/veth.ts [RUNS=5] [PACKETS=2000000]      (root)
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { parseIPv4 } from "../src/packet/ipv4.ts";
import { UdpFlow } from "../src/packet/udpflow.ts";
import { median } from "./lib/stats.ts";
import { rateOf, XdpCounter } from "./lib/xdp-counter.ts";

const RUNS = Number(process.argv[2] ?? 5);
const N = Number(process.argv[3] ?? 2_000_000);
const tag = `bv${process.pid % 100000}`;
const A = `${tag}a`,
  B = `${tag}b`,
  IFA = `${tag}a0`,
  IFB = `${tag}b0`;
const sh = (cmd: string[]) => spawnSync(cmd[0], cmd.slice(1), { encoding: "utf8" });
const have = (bin: string) => sh(["sh", "-c", `command -v ${bin}`]).status === 0;
const pktgen = `${import.meta.dir}/../src/app/pktgen/main.ts`;

function setup(): void {
  for (const c of [
    ["ip", "netns", "add", A],
    ["ip", "netns", "add", B],
    ["ip", "link", "add", IFA, "netns", A, "type", "veth", "peer", "name", IFB, "netns", B],
    ["ip", "netns", "exec", A, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
    ["ip", "netns", "exec", B, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"],
    ["ip", "-n", A, "link", "set", IFA, "up"],
    ["ip", "-n", B, "link", "set", IFB, "up"],
  ]) {
    const r = sh(c);
    if (r.status !== 0) {
      teardown();
      throw new Error(`${c.join(" ")}: ${r.stderr}`);
    }
  }
}
function teardown(): void {
  sh(["ip", "netns", "del", A]);
  sh(["ip", "netns", "del", B]);
}

// the same 60-byte frame for every tool: pkt-gen's default UDP packet on 198.18.0.0/15
const r4 = (a: string) => ({ v6: false, start: parseIPv4(a), end: parseIPv4(a), port0: 1234, port1: 1234 });
const frame = new UdpFlow({
  v6: false,
  srcMac: new Uint8Array(6),
  dstMac: new Uint8Array(6).fill(255),
  src: r4("198.18.0.1"),
  dst: r4("198.18.0.2"),
  size: 60,
  minSize: 0,
  randomSrc: false,
  randomDst: false,
  stampBytes: 0,
  vnetHdr: 0,
}).frame;
// the frame for the C peers, in a directory made once the run starts and removed when it ends
let dir = "";

const tools: { label: string; backend: string; cmd: () => string[]; stopAfterMs?: number; need?: string }[] = [
  {
    label: "bunmap pktgen packet:",
    backend: "AF_PACKET",
    cmd: () => [
      process.execPath,
      pktgen,
      "-i",
      `packet:${IFA}`,
      "-f",
      "tx",
      "-n",
      String(N),
      "-w",
      "0",
      "-s",
      "198.18.0.1",
      "-d",
      "198.18.0.2",
    ],
  },
  {
    label: "bunmap pktgen packet:@conf:buf_size=256",
    backend: "AF_PACKET",
    cmd: () => [
      process.execPath,
      pktgen,
      "-i",
      `packet:${IFA}@conf:buf_size=256`,
      "-f",
      "tx",
      "-n",
      String(N),
      "-w",
      "0",
      "-s",
      "198.18.0.1",
      "-d",
      "198.18.0.2",
    ],
  },
  {
    label: "trafgen (netsniff-ng)",
    backend: "AF_PACKET",
    need: "trafgen",
    cmd: () => ["trafgen", "-o", IFA, "-i", `${dir}/frame.cfg`, "-n", String(N), "--cpus", "1"],
  },
  {
    label: "dpdk-testpmd net_af_packet",
    backend: "AF_PACKET",
    need: "dpdk-testpmd",
    stopAfterMs: 6000,
    cmd: () => testpmd(`net_af_packet0,iface=${IFA},blocksz=65536,framesz=2048,framecnt=1024,qdisc_bypass=1`),
  },
  {
    label: "bunmap pktgen xdp:",
    backend: "AF_XDP",
    cmd: () => [
      process.execPath,
      pktgen,
      "-i",
      `xdp:${IFA}`,
      "-f",
      "tx",
      "-n",
      String(N),
      "-w",
      "0",
      "-s",
      "198.18.0.1",
      "-d",
      "198.18.0.2",
    ],
  },
  {
    label: "bunmap pktgen xdp: -b 64",
    backend: "AF_XDP",
    cmd: () => [
      process.execPath,
      pktgen,
      "-i",
      `xdp:${IFA}`,
      "-f",
      "tx",
      "-n",
      String(N),
      "-w",
      "0",
      "-b",
      "64",
      "-s",
      "198.18.0.1",
      "-d",
      "198.18.0.2",
    ],
  },
  {
    label: "dpdk-testpmd net_af_xdp",
    backend: "AF_XDP",
    need: "dpdk-testpmd",
    stopAfterMs: 6000,
    cmd: () => testpmd(`net_af_xdp0,iface=${IFA},start_queue=0,queue_count=1`),
  },
];

function testpmd(vdev: string): string[] {
  // no hugepages here: plain memory, and a pool small enough for it
  return [
    "dpdk-testpmd",
    "--no-huge",
    "-m",
    "1024",
    "--no-pci",
    "-l",
    "0-1",
    "--vdev",
    vdev,
    "--",
    "--forward-mode=txonly",
    "--txpkts=60",
    "--auto-start",
    "--nb-cores=1",
    "--stats-period=1",
    "--total-num-mbufs=16384",
    "--tx-ip=198.18.0.1,198.18.0.2",
  ];
}

if (process.getuid?.() !== 0) {
  console.error("bench/veth.ts needs root (network namespaces, XDP)");
  process.exit(1);
}
setup();
let counter: XdpCounter | null = null;
try {
  dir = mkdtempSync(`${tmpdir()}/bunmap-bench-`);
  writeFileSync(
    `${dir}/frame.cfg`,
    `{ ${[...frame].map((b) => `0x${b.toString(16).padStart(2, "0")}`).join(", ")} }\n`,
  );
  counter = new XdpCounter(B, IFB);
  await counter.ready();
  const active = tools.filter((t) => !t.need || have(t.need));
  for (const t of tools) if (!active.includes(t)) console.log(`(skipping ${t.label}: ${t.need} is not installed)`);
  const res = new Map(active.map((t) => [t.label, [] as number[]]));
  for (let i = 0; i < RUNS; i++)
    for (const t of active)
      res.get(t.label)!.push(await rateOf(counter, ["ip", "netns", "exec", A, ...t.cmd()], t.stopAfterMs));
  console.log(
    `veth pair, 60-byte frames, receiver: counting XDP_DROP on the peer; ${RUNS} runs; ${new Date().toISOString()}`,
  );
  console.log("| backend | tool | median Mpps | runs | bunmap / best C tool |");
  console.log("| --- | --- | --- | --- | --- |");
  for (const backend of ["AF_PACKET", "AF_XDP"]) {
    const rows = active.filter((t) => t.backend === backend);
    const c = Math.max(...rows.filter((t) => !t.label.startsWith("bunmap")).map((t) => median(res.get(t.label)!)));
    for (const t of rows) {
      const v = res.get(t.label)!;
      const ratio = t.label.startsWith("bunmap") ? (Number.isFinite(c) ? (median(v) / c).toFixed(2) : "n/a") : "";
      console.log(
        `| ${backend} | ${t.label} | ${median(v).toFixed(3)} | ${v.map((x) => x.toFixed(3)).join(", ")} | ${ratio} |`,
      );
    }
  }
} finally {
  await counter?.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
  teardown();
}
