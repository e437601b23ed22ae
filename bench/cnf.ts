// Benchmark: network functions in containers (issue 26). Two containers from the test image on one
// vale network (packet datapath), bunmap pktgen tx in one and rx in the other, 60-byte frames, over
//   (a) net:eth0 ports through the network's switch (one copy per packet, in the plugin's worker),
//   (b) a pipe between the two containers (net:eth0{N / }N: one region, nothing copied),
//   (c) AF_XDP on eth0 (xdp:eth0) and (d) AF_PACKET on eth0 (packet:eth0), through the same network,
// and, as the tool's own ceiling, (t) pktgen over a shm pipe between two host processes. Rounds
// interleaved; the figure is the receiver's rate over the sender's sending time (packets received /
// the sender's seconds), so what the switch drops at a full ring does not count.
//   bun bench/cnf.ts [ROUNDS=3] [PATHS=t,a,b,c,d]   (root, Docker engine running)
import { existsSync, mkdtempSync, realpathSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { IMAGE } from "../tests/helpers/docker-image.ts";
import { docker, PluginProc } from "../tests/helpers/plugin-proc.ts";
import { dockerBenchReady } from "./lib/docker-bench.ts";
import { median } from "./lib/stats.ts";

const ROUNDS = Number(process.argv[2] ?? 3);
const PATHS = (process.argv[3] ?? "t,a,b,c,d").split(",");
const repo = `${import.meta.dir}/..`;
const tag = `bc${process.pid}`;
const say = (s: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);

dockerBenchReady();
const run = mkdtempSync(`${tmpdir()}/bunmap-run-`);
// CNF_SWITCH_SPIN_US: the same for the plugin's switch workers
const plugin = new PluginProc({
  BUNMAP_PORTS_SOCK: `${run}/ports.sock`,
  ...(process.env.CNF_SWITCH_SPIN_US ? { BUNMAP_SPIN_US: process.env.CNF_SWITCH_SPIN_US } : {}),
});
await plugin.start();
const NET = `${tag}n`,
  A = `${tag}a`,
  B = `${tag}b`;
const cleanup = async () => {
  docker("rm", "-f", A, B);
  docker("network", "rm", NET);
  await plugin.dispose();
  rmSync(run, { recursive: true, force: true });
};
process.on("SIGINT", () => cleanup().then(() => process.exit(130)));

interface Path {
  key: string;
  label: string;
  /** Packets a run (about 3 s at the rate seen on this machine). */
  n: number;
  rx: string;
  tx: string;
  host?: boolean;
}
let macB = "";
const paths = (): Path[] => [
  {
    key: "t",
    label: "(t) pktgen over a host shm pipe (the tool)",
    n: 300_000_000,
    rx: "shm:bc}0",
    tx: "shm:bc{0",
    host: true,
  },
  {
    key: "a",
    label: "(a) net: ports through the switch",
    n: 20_000_000,
    rx: "net:eth0@conf:station=02:00:00:00:00:0b,slots=4096",
    tx: "net:eth0 -S 02:00:00:00:00:0a -D 02:00:00:00:00:0b",
  },
  { key: "b", label: "(b) pipe between the containers", n: 300_000_000, rx: "'net:eth0}1'", tx: "'net:eth0{1'" },
  { key: "c", label: "(c) AF_XDP on eth0", n: 1_500_000, rx: "xdp:eth0", tx: `xdp:eth0 -D ${macB}` },
  { key: "d", label: "(d) AF_PACKET on eth0", n: 1_500_000, rx: "packet:eth0", tx: `packet:eth0 -D ${macB}` },
];

// CNF_SPIN_US: how long pktgen spins before it sleeps (BUNMAP_SPIN_US; its default, 50, when unset)
const pktgen = `env BUNMAP_SPIN_US=${process.env.CNF_SPIN_US ?? 50} bun /bunmap/src/app/pktgen/main.ts`;
const num = (re: RegExp, s: string) => Number(re.exec(s)?.[1] ?? Number.NaN);

/** One run: rx started, tx sends n, rx stopped (SIGINT: its summary); Mpps received over tx's time. */
async function measure(p: Path): Promise<{ mpps: number; sent: number; got: number }> {
  const rxCmd = `${pktgen} -i ${p.rx} -f rx -n ${p.n}`;
  const txCmd = `${pktgen} -i ${p.tx} -f tx -n ${p.n}`;
  const spawnIn = (ct: string | null, cmd: string) =>
    Bun.spawn(
      ct
        ? ["docker", "exec", ct, "sh", "-c", `exec ${cmd}`]
        : ["sh", "-c", `exec ${cmd.replace(pktgen, `${process.execPath} ${repo}/src/app/pktgen/main.ts`)}`],
      {
        stdout: "pipe",
        stderr: "pipe",
      },
    );
  const rx = spawnIn(p.host ? null : B, rxCmd);
  const rxOut = Promise.all([new Response(rx.stdout).text(), new Response(rx.stderr).text()]).then((x) => x.join(""));
  await Bun.sleep(1500);
  const tx = spawnIn(p.host ? null : A, txCmd);
  const txOut = (await Promise.all([new Response(tx.stdout).text(), new Response(tx.stderr).text()])).join("");
  await tx.exited;
  await Bun.sleep(500);
  // stop the receiver if it still waits for packets the switch dropped (its summary comes on SIGINT)
  if (p.host) rx.kill("SIGINT");
  else
    docker(
      "exec",
      B,
      "sh",
      "-c",
      "for q in $(ps | grep '[p]ktgen/main.ts -i' | sed 's/^ *\\([0-9]*\\).*/\\1/'); do kill -INT $q; done",
    );
  const out = await rxOut;
  const sent = num(/Sent (\d+) packets/, txOut),
    secs = num(/Sent \d+ packets \d+ bytes \d+ events \d+ bytes each in ([0-9.]+) seconds/, txOut),
    got = num(/Received (\d+) packets/, out);
  if (!(sent > 0) || !(got >= 0)) throw new Error(`${p.label}: no counts\ntx: ${txOut}\nrx: ${out}`);
  return { mpps: got / secs / 1e6, sent, got };
}

/** libxdp and what it links, and its BPF objects, bind-mounted from this machine (the image has no
 * libxdp; the containers run the same library the host benches use). */
function xdpMounts(): string[] {
  const lib = "/usr/lib/x86_64-linux-gnu/libxdp.so.1";
  if (!existsSync(lib)) return [];
  const deps = [
    ...Bun.spawnSync(["ldd", lib])
      .stdout.toString()
      .matchAll(/=> (\/\S+)/g),
  ].map((m) => m[1]);
  return [lib, ...deps.filter((d) => !d.includes("libc.so")), "/usr/lib/x86_64-linux-gnu/bpf"]
    .filter((f) => existsSync(f))
    .flatMap((f) => ["-v", `${realpathSync(f)}:${f}:ro`]);
}

try {
  docker("network", "create", "-d", "vale", "--internal", "--subnet", "198.18.150.0/24", NET);
  for (const c of [A, B]) {
    const r = docker(
      "run",
      "-d",
      // AF_XDP in a container: an XDP program on eth0, UMEM pinned (CAP_IPC_LOCK: no memlock limit to
      // raise; --privileged and --ulimit memlock are refused on this VM)
      "--cap-add",
      "NET_ADMIN",
      "--cap-add",
      "SYS_ADMIN",
      "--cap-add",
      "IPC_LOCK",
      "--name",
      c,
      "--network",
      NET,
      "-v",
      `${run}:/run/bunmap`,
      "-v",
      `${repo}:/bunmap:ro`,
      ...xdpMounts(),
      IMAGE,
    );
    if (r.status !== 0) throw new Error(r.stderr);
  }
  macB = docker("exec", B, "cat", "/sys/class/net/eth0/address").stdout.trim();
  const chosen = paths().filter((p) => PATHS.includes(p.key));
  const res = new Map<string, number[]>(chosen.map((p) => [p.key, []]));
  for (let r = 1; r <= ROUNDS; r++)
    for (const p of r % 2 ? chosen : [...chosen].reverse()) {
      const m = await measure(p);
      res.get(p.key)!.push(m.mpps);
      say(`round ${r} ${p.label}: ${m.mpps.toFixed(2)} Mpps (${m.got} of ${m.sent})`);
    }
  const c = median(res.get("c") ?? []);
  console.log("\n| path | median Mpps received | runs | / (c) AF_XDP |");
  console.log("| ---- | -------------------- | ---- | ------------ |");
  for (const p of chosen) {
    const v = res.get(p.key)!;
    const m = median(v);
    console.log(
      `| ${p.label} | ${m.toFixed(2)} | ${v.map((x) => x.toFixed(2)).join(", ")} | ${Number.isNaN(c) ? "-" : `${(m / c).toFixed(2)}×`} |`,
    );
  }
} finally {
  await cleanup();
}
