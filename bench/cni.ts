// The CNI plugin against the reference one (containernetworking-plugins' bridge: a Linux bridge,
// veths, host-local, masquerade: what podman's default network and kubenet are), as a runtime sees
// them: how long ADD and DEL take per container, and what two containers (namespaces with kernel
// TCP: bench/c/tcpx.c, every byte checked) move and ping between them. Both run in a host namespace
// of the benchmark's own (bunmap's datapath process in it), rounds interleaved.
//   bun bench/cni.ts [ROUNDS=5]
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { buildCni } from "../cni/build.ts";
import { PluginProc } from "../tests/helpers/plugin-proc.ts";
import { say } from "./lib/progress.ts";
import { median, q, times } from "./lib/stats.ts";
import { must, TCP_BYTES, tcpxHost, tcpxRate } from "./lib/tcpx.ts";

const ROUNDS = Number(process.argv[2] ?? 5);
const tag = `bmcb${process.pid}`;
const H = `${tag}h`;
const work = mkdtempSync(`${tmpdir()}/bunmap-cni-bench-`);
const bin = `${work}/bin`;

const KINDS = {
  bunmap: (n: number) => ({
    cniVersion: "1.0.0",
    name: "benchvale",
    type: "bunmap",
    socket: `${work}/p.sock`,
    ipam: { type: "host-local", dataDir: `${work}/ipam`, ranges: [[{ subnet: `198.18.${90 + n}.0/24` }]] },
  }),
  bridge: (n: number) => ({
    cniVersion: "1.0.0",
    name: "benchbr",
    type: "bridge",
    bridge: "cnibr0",
    isGateway: true,
    ipMasq: true,
    ipam: {
      type: "host-local",
      dataDir: `${work}/ipam`,
      ranges: [[{ subnet: `198.18.${94 + n}.0/24` }]],
      routes: [{ dst: "0.0.0.0/0" }],
    },
  }),
};
type Kind = keyof typeof KINDS;

function cni(kind: Kind, cmd: "ADD" | "DEL", ns: string, round: number): { ms: number; ip: string } {
  const env = [
    `CNI_COMMAND=${cmd}`,
    `CNI_CONTAINERID=${ns}`,
    `CNI_NETNS=/var/run/netns/${ns}`,
    "CNI_IFNAME=eth0",
    `CNI_PATH=${bin}`,
  ];
  const t0 = performance.now();
  const r = spawnSync("ip", ["netns", "exec", H, "env", "-i", `PATH=${process.env.PATH}`, ...env, `${bin}/${kind}`], {
    input: JSON.stringify(KINDS[kind](round)),
    encoding: "utf8",
    timeout: 60_000,
  });
  const ms = performance.now() - t0;
  if (r.status !== 0) throw new Error(`${kind} ${cmd}: ${r.stdout}${r.stderr}`);
  const ip = cmd === "ADD" ? (JSON.parse(r.stdout).ips[0].address as string).split("/")[0] : "";
  return { ms, ip };
}

interface Sample {
  firstAdd: number;
  add: number[];
  del: number[];
  mbs: number;
  rtt50: number;
}

/** One round of one kind: four containers added (the first makes the network), TCP and ping between two, all deleted. */
function round(kind: Kind, r: number): Sample {
  const names = [0, 1, 2, 3].map((i) => `${tag}${kind[0]}${r}${i}`);
  for (const n of names) must("ip", "netns", "add", n);
  try {
    const added = names.map((n) => cni(kind, "ADD", n, r));
    const srv = Bun.spawn(["ip", "netns", "exec", names[1], tcpxHost(), "server", "5001"], { stdout: "ignore" });
    Bun.sleepSync(300);
    const out = must("ip", "netns", "exec", names[0], tcpxHost(), "client", added[1].ip, "5001", TCP_BYTES);
    srv.kill();
    const ping = must("ip", "netns", "exec", names[0], "ping", "-c", "50", "-i", "0.01", "-W", "1", added[1].ip);
    const del = names.map((n) => cni(kind, "DEL", n, r).ms);
    return {
      firstAdd: added[0].ms,
      add: added.slice(1).map((a) => a.ms),
      del,
      mbs: tcpxRate(out),
      rtt50: q(times(ping), 0.5),
    };
  } finally {
    for (const n of names) spawnSync("ip", ["netns", "del", n]);
  }
}

let plugin: PluginProc | null = null;
try {
  must("ip", "netns", "add", H);
  must("ip", "-n", H, "link", "set", "lo", "up");
  must("ip", "netns", "exec", H, "sysctl", "-qw", "net.ipv4.ip_forward=1");
  must("mkdir", "-p", bin);
  buildCni(`${bin}/bunmap`);
  for (const p of ["host-local", "bridge"]) symlinkSync(`/usr/lib/cni/${p}`, `${bin}/${p}`);
  plugin = new PluginProc({ BUNMAP_PLUGIN_SOCK: `${work}/p.sock` }, ["ip", "netns", "exec", H]);
  await plugin.start();
  const got: Record<Kind, Sample[]> = { bunmap: [], bridge: [] };
  for (let r = 0; r < ROUNDS; r++)
    for (const kind of (r % 2 ? ["bridge", "bunmap"] : ["bunmap", "bridge"]) as Kind[]) {
      say(`round ${r + 1}/${ROUNDS}: ${kind}`);
      got[kind].push(round(kind, r));
      // the bridge plugin leaves its bridge: gone before the next round, as bunmap's network goes with its last container
      spawnSync("ip", ["-n", H, "link", "del", "cnibr0"]);
    }
  const row = (k: Kind) => {
    const s = got[k];
    return {
      firstAdd: median(s.map((x) => x.firstAdd)),
      add: median(s.flatMap((x) => x.add)),
      del: median(s.flatMap((x) => x.del)),
      gbits: median(s.map((x) => (x.mbs * 8) / 1000)),
      rtt: median(s.map((x) => x.rtt50)),
      runs: s.map((x) => ((x.mbs * 8) / 1000).toFixed(1)).join(", "),
    };
  };
  const b = row("bunmap"),
    l = row("bridge");
  const f = (x: number, d = 1) => x.toFixed(d);
  console.log(`\`bun bench/cni.ts ${ROUNDS}\`, ${new Date().toISOString().slice(0, 16).replace("T", " ")}`);
  console.log("");
  console.log("| plugin | first ADD ms | ADD ms | DEL ms | TCP Gbit/s (runs) | ping p50 ms |");
  console.log("| --- | --- | --- | --- | --- | --- |");
  console.log(
    `| bunmap | ${f(b.firstAdd)} | ${f(b.add)} | ${f(b.del)} | ${f(b.gbits, 2)} (${b.runs}) | ${f(b.rtt, 3)} |`,
  );
  console.log(
    `| bridge (reference) | ${f(l.firstAdd)} | ${f(l.add)} | ${f(l.del)} | ${f(l.gbits, 2)} (${l.runs}) | ${f(l.rtt, 3)} |`,
  );
  console.log(
    `| bunmap / bridge | ${f(b.firstAdd / l.firstAdd, 2)}× | ${f(b.add / l.add, 2)}× | ${f(b.del / l.del, 2)}× | ${f(b.gbits / l.gbits, 2)}× | ${f(b.rtt / l.rtt, 2)}× |`,
  );
} finally {
  await plugin?.dispose();
  spawnSync("ip", ["netns", "del", H]);
  rmSync(work, { recursive: true, force: true });
}
