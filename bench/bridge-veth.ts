// Benchmark (issue 5): forwarding between two veths, A -> [M] -> B. In namespace M: bunmap's bridge
// (xdp: ports, then packet: ports), the Linux bridge, or an XDP redirect program (the kernel's
// fastest path). One sender (bunmap pktgen on packet:, constant across variants), one receiver (a
// counting XDP_DROP on B). Median of RUNS, interleaved.   bun bench/bridge-veth.ts [RUNS=5] [PACKETS=2000000]  (root)
import { spawnSync } from "node:child_process";
import { median } from "./lib/stats.ts";
import { rateOf, XdpCounter } from "./lib/xdp-counter.ts";

const RUNS = Number(process.argv[2] ?? 5),
  N = Number(process.argv[3] ?? 2_000_000);
const tag = `bb${process.pid % 100000}`;
const A = `${tag}a`,
  M = `${tag}m`,
  B = `${tag}b`;
const a0 = `${tag}a0`,
  m0 = `${tag}m0`,
  m1 = `${tag}m1`,
  b0 = `${tag}b0`;
const sh = (c: string[]) => spawnSync(c[0], c.slice(1), { encoding: "utf8" });
const must = (c: string[]) => {
  const r = sh(c);
  if (r.status !== 0) throw new Error(`${c.join(" ")}: ${r.stderr}`);
};
const root = `${import.meta.dir}/..`;

function setup() {
  for (const n of [A, M, B]) {
    must(["ip", "netns", "add", n]);
    must(["ip", "netns", "exec", n, "sysctl", "-qw", "net.ipv6.conf.all.disable_ipv6=1"]);
  }
  must(["ip", "link", "add", a0, "netns", A, "type", "veth", "peer", "name", m0, "netns", M]);
  must(["ip", "link", "add", m1, "netns", M, "type", "veth", "peer", "name", b0, "netns", B]);
  for (const [n, d] of [
    [A, a0],
    [M, m0],
    [M, m1],
    [B, b0],
  ])
    must(["ip", "-n", n, "link", "set", d, "up"]);
}
const teardown = () => {
  for (const n of [A, M, B]) sh(["ip", "netns", "del", n]);
};

/** Start something in M and wait for its first stdout line; returns a stop function. */
async function inM(cmd: string[], until: RegExp): Promise<() => Promise<void>> {
  const p = Bun.spawn(["ip", "netns", "exec", M, ...cmd], { stdin: "pipe", stdout: "pipe", stderr: "pipe" });
  const r = (p.stdout as ReadableStream<Uint8Array>).getReader();
  let out = "";
  while (!until.test(out)) {
    const { value, done } = await r.read();
    if (done)
      throw new Error(`${cmd.join(" ")} exited: ${out}${await new Response(p.stderr as ReadableStream).text()}`);
    out += new TextDecoder().decode(value);
  }
  return async () => {
    (p.stdin as import("bun").FileSink).end(); // helpers leave on EOF (and clean up); the bridge on SIGTERM
    p.kill("SIGTERM");
    await p.exited;
  };
}

const variants: { label: string; start: () => Promise<() => Promise<void>> }[] = [
  {
    label: "bunmap bridge, xdp: ports",
    start: () =>
      inM(
        [process.execPath, `${root}/src/app/bridge/main.ts`, "-i", `xdp:${m0}`, "-i", `xdp:${m1}`, "-w", "0"],
        /zerocopy/,
      ),
  },
  {
    label: "bunmap bridge, packet: ports",
    start: () =>
      inM(
        [process.execPath, `${root}/src/app/bridge/main.ts`, "-i", `packet:${m0}`, "-i", `packet:${m1}`, "-w", "0"],
        /zerocopy/,
      ),
  },
  {
    label: "Linux bridge",
    start: async () => {
      must(["ip", "-n", M, "link", "add", "br0", "type", "bridge"]);
      for (const d of [m0, m1]) must(["ip", "-n", M, "link", "set", d, "master", "br0"]);
      must(["ip", "-n", M, "link", "set", "br0", "up"]);
      return async () => {
        sh(["ip", "-n", M, "link", "del", "br0"]);
      };
    },
  },
  {
    label: "XDP redirect (kernel)",
    start: () => inM([process.execPath, `${root}/bench/xdp-redirect.ts`, m0, m1], /redirecting/),
  },
];

if (process.getuid?.() !== 0) {
  console.error("bench/bridge-veth.ts needs root");
  process.exit(1);
}
setup();
let counter: XdpCounter | null = null;
try {
  counter = new XdpCounter(B, b0);
  await counter.ready();
  const sender = [
    "ip",
    "netns",
    "exec",
    A,
    process.execPath,
    `${root}/src/app/pktgen/main.ts`,
    "-i",
    `packet:${a0}`,
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
  ];
  const res = new Map(variants.map((v) => [v.label, [] as number[]]));
  for (let i = 0; i < RUNS; i++) {
    for (const v of variants) {
      const stop = await v.start();
      try {
        res.get(v.label)!.push(await rateOf(counter, sender));
      } finally {
        await stop();
      }
    }
  }
  console.log(
    `A -> M -> B over veths, 60-byte frames, sender bunmap pktgen packet: in A, counting XDP_DROP on B; ${RUNS} runs; ${new Date().toISOString()}`,
  );
  console.log("| forwarder in M | median Mpps delivered | runs | vs Linux bridge | vs XDP redirect |");
  console.log("| --- | --- | --- | --- | --- |");
  const lb = median(res.get("Linux bridge")!),
    xr = median(res.get("XDP redirect (kernel)")!);
  for (const v of variants) {
    const r = res.get(v.label)!,
      m = median(r);
    console.log(
      `| ${v.label} | ${m.toFixed(3)} | ${r.map((x) => x.toFixed(3)).join(", ")} | ${(m / lb).toFixed(2)} | ${(m / xr).toFixed(2)} |`,
    );
  }
} finally {
  await counter?.close();
  teardown();
}
