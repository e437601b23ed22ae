// Benchmark: containers on two hosts, across a VXLAN segment, two ways in one run, rounds interleaved:
//   vale     a vale network with an uplink (-o vni=77 -o peers=...) on each host's Docker engine
//   linux    what a user builds by hand: a Docker bridge network on each host whose Linux bridge also
//            holds a Linux vxlan device (id 78, UDP 4790), the same subnet split by --ip-range
// Hosts are network namespaces joined by an underlay veth, each with its own dockerd and plugin
// (docker/host-ns.sh). Ordinary programs in the containers: busybox ping (300 × 10 ms: p50/p99), TCP
// (one connection, 1 GB, bench/c/tcpx.c: static C, every byte checked; measured first on a plain veth
// pair, to show it is not what limits the setups). Addresses: 198.18.0.0/15 only.
//   bun bench/vxlan-hosts.ts [ROUNDS=3]   (root; ~1 min a round)
import { spawnSync } from "node:child_process";
import { ensureImage, IMAGE } from "../tests/helpers/docker-image.ts";
import { say } from "./lib/progress.ts";
import { median, q, times } from "./lib/stats.ts";
import { TCP_BYTES, TCPX, tcpxHost, tcpxOnVeth, tcpxRate } from "./lib/tcpx.ts";

const ROUNDS = Number(process.argv[2] ?? 3);
const repo = `${import.meta.dir}/..`;
tcpxHost(); // built before the containers look for it
const H = { A: `bv${process.pid}A`, B: `bv${process.pid}B` };
const UNDER = { A: "198.18.140.1", B: "198.18.140.2" };
const sh = (cmd: string[], timeout = 300_000) => spawnSync(cmd[0], cmd.slice(1), { encoding: "utf8", timeout });
const must = (cmd: string[]) => {
  const r = sh(cmd);
  if (r.status !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr || r.stdout}`);
  return r.stdout;
};
const sock = (h: string) => `/tmp/bunmap-host-${h}/docker.sock`;
const on = (h: string, ...a: string[]) => sh(["docker", "-H", `unix://${sock(h)}`, ...a]);
const mustOn = (h: string, ...a: string[]) => must(["docker", "-H", `unix://${sock(h)}`, ...a]);

if (process.getuid?.() !== 0) {
  console.error("needs root (network namespaces, Docker engines of its own)");
  process.exit(1);
}

interface Row {
  p50: number;
  p99: number;
  tcp: number;
}
const SETUPS = ["vale", "linux"] as const;
type Setup = (typeof SETUPS)[number];
const rows = new Map<Setup, Row[]>(SETUPS.map((s) => [s, []]));

function up(): void {
  say("two hosts: namespaces, underlay veth, a dockerd and a plugin each");
  must(["ip", "netns", "add", H.A]);
  must(["ip", "netns", "add", H.B]);
  must(["ip", "link", "add", "u", "netns", H.A, "type", "veth", "peer", "name", "u", "netns", H.B]);
  for (const k of ["A", "B"] as const) {
    must([`${repo}/docker/host-ns.sh`, "up", H[k], "u", `${UNDER[k]}/30`]);
    ensureImage(sock(H[k]));
  }
}

function networks(): void {
  for (const [k, range, gw, other] of [
    ["A", "0/25", "1", UNDER.B],
    ["B", "128/25", "254", UNDER.A],
  ] as const) {
    const h = H[k];
    mustOn(
      h,
      ...["network", "create", "-d", "vale", "--subnet", "198.18.150.0/24", "--ip-range", `198.18.150.${range}`],
      ...["--gateway", `198.18.150.${gw}`, "-o", "vni=77", "-o", `peers=${other}`, "vnet"],
    );
    // by hand: Docker's bridge network, its Linux bridge given a Linux vxlan device
    mustOn(
      h,
      ...["network", "create", "-d", "bridge", "--subnet", "198.18.152.0/24", "--ip-range", `198.18.152.${range}`],
      ...["--gateway", `198.18.152.${gw}`, "-o", "com.docker.network.bridge.name=brvx78"],
      ...["-o", "com.docker.network.driver.mtu=1450", "lnet"],
    );
    const self = k === "A" ? UNDER.A : UNDER.B;
    must([
      "ip",
      "-n",
      h,
      "link",
      "add",
      "vx78",
      "type",
      "vxlan",
      "id",
      "78",
      "remote",
      other,
      "local",
      self,
      "dstport",
      "4790",
      "dev",
      "u",
    ]);
    must(["ip", "-n", h, "link", "set", "vx78", "master", "brvx78"]);
    must(["ip", "-n", h, "link", "set", "vx78", "up"]);
  }
  for (const [k, c, net] of [
    ["A", "va", "vnet"],
    ["B", "vb", "vnet"],
    ["A", "la", "lnet"],
    ["B", "lb", "lnet"],
  ] as const)
    mustOn(H[k], "run", "-d", "--name", c, "--network", net, "-v", `${repo}:/bunmap:ro`, IMAGE);
}

const addr = (h: string, c: string) =>
  /inet (\S+)\//.exec(mustOn(h, "exec", c, "ip", "-4", "addr", "show", "eth0"))?.[1] ?? "";

async function measure(s: Setup): Promise<Row> {
  const [a, b] = s === "vale" ? ["va", "vb"] : ["la", "lb"];
  const to = addr(H.B, b);
  on(H.A, "exec", a, "ping", "-c", "3", "-W", "2", to); // neighbours resolved, MACs learned
  const rtt = times(on(H.A, "exec", a, "ping", "-i", "0.01", "-c", "300", "-W", "2", to).stdout);
  on(H.B, "exec", "-d", b, "sh", "-c", `${TCPX} server 5001 > /tmp/tcp.out`);
  await Bun.sleep(500);
  const out = on(H.A, "exec", a, TCPX, "client", to, "5001", TCP_BYTES).stdout;
  await Bun.sleep(300);
  if (!on(H.B, "exec", b, "cat", "/tmp/tcp.out").stdout.includes(`got ${TCP_BYTES} ok`))
    throw new Error(`${s}: the TCP stream arrived incomplete or changed: ${out}`);
  return { p50: median(rtt), p99: q(rtt, 0.99), tcp: tcpxRate(out) };
}

function down(): void {
  for (const h of Object.values(H)) {
    const ids = on(h, "ps", "-aq").stdout.split(/\s+/).filter(Boolean);
    if (ids.length) on(h, "rm", "-f", ...ids);
    for (const n of ["vnet", "lnet"]) on(h, "network", "rm", n);
    sh([`${repo}/docker/host-ns.sh`, "down", h]);
    sh(["ip", "netns", "del", h]);
  }
}

try {
  up();
  networks();
  const tool: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    tool.push(tcpxOnVeth(`${H.A}t`, { mtu: 1450 }));
    for (const s of r % 2 ? [...SETUPS].reverse() : SETUPS) {
      say(`round ${r + 1}/${ROUNDS}: ${s}`);
      rows.get(s)!.push(await measure(s));
    }
  }
  const med = (s: Setup, k: keyof Row) => median(rows.get(s)!.map((x) => x[k]));
  const all = (s: Setup, k: keyof Row) =>
    rows
      .get(s)!
      .map((x) => x[k])
      .join(", ");
  console.log(
    `\ncontainers on two hosts over VXLAN, kernel sockets; ${ROUNDS} rounds, medians; ${new Date().toISOString()}`,
  );
  console.log("| | vale network, VXLAN uplink | Linux bridge + Linux vxlan (Docker bridge network) | vale / Linux |");
  console.log("| --- | --- | --- | --- |");
  for (const [name, k, unit] of [
    ["ping RTT p50, 300 × 10 ms", "p50", " ms"],
    ["ping RTT p99", "p99", " ms"],
    ["TCP, one connection, 1 GB (tcpx)", "tcp", " MB/s"],
  ] as const)
    console.log(
      `| ${name} | ${med("vale", k)}${unit} (${all("vale", k)}) | ${med("linux", k)}${unit} (${all("linux", k)}) | ${(med("vale", k) / med("linux", k)).toFixed(2)} |`,
    );
  console.log(`\nthe TCP tool on a plain veth pair (MTU 1450): ${median(tool)} MB/s (${tool.join(", ")})`);
} finally {
  down();
}
