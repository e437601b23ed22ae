// Benchmark (issue 6): container-to-container UDP packet rate on a vale network (bunmap's switch,
// packet: backend) against Docker's own bridge network, same machine, same run. Sender and receiver
// are bunmap pktgen on the containers' eth0 (60-byte UDP, 198.18.0.0/15); the metric is what the
// receiver got per second, up to its last packet. Median of RUNS, interleaved.
//   bun bench/docker-udp.ts [RUNS=3] [PACKETS=1000000]      (root, Docker engine running)
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { IMAGE, ensureImage } from "../tests/helpers/docker-image.ts";
import { median } from "./lib/xdp-counter.ts";

const RUNS = Number(process.argv[2] ?? 3), N = String(process.argv[3] ?? 1_000_000);
const repo = `${import.meta.dir}/..`;
const sh = (c: string[]) => spawnSync(c[0], c.slice(1), { encoding: "utf8" });
const docker = (...a: string[]) => sh(["docker", ...a]);
const tag = `bd${process.pid}`;
const SOCK = "/run/docker/plugins/vale.sock";

let plugin: ReturnType<typeof Bun.spawn> | null = null;
if (!existsSync(SOCK)) {
  plugin = Bun.spawn([process.execPath, `${repo}/plugin/main.ts`], { stdout: "pipe", stderr: "inherit", env: { ...process.env, BUNMAP_PLUGIN_DB: `${mkdtempSync(`${tmpdir()}/bunmap-bench-`)}/vale.db`, BUNMAP_PLUGIN_BACKEND: "packet" } });
  const r = (plugin.stdout as ReadableStream<Uint8Array>).getReader();
  let out = "";
  while (!out.includes("listening")) { const { value, done } = await r.read(); if (done) throw new Error(out); out += new TextDecoder().decode(value); }
}
ensureImage();

async function once(driver: "vale" | "bridge", run: number): Promise<number> {
  const net = `${tag}${driver}${run}`, rx = `${net}rx`, tx = `${net}tx`;
  const subnet = driver === "vale" ? "198.18.10.0/24" : "198.18.11.0/24";
  const base = subnet.slice(0, subnet.lastIndexOf("."));
  try {
    const mk = docker("network", "create", "-d", driver, "--subnet", subnet, ...(driver === "vale" ? ["-o", "backend=packet"] : []), net);
    if (mk.status !== 0) throw new Error(mk.stderr);
    const run = (name: string, ip: string, extra: string[], cmd: string[]) =>
      docker("run", "-d", "--name", name, "--network", net, "--ip", ip, "--cap-add", "NET_RAW", "-v", `${repo}:/bunmap:ro`, ...extra, IMAGE, "bun", "/bunmap/src/app/pktgen/main.ts", ...cmd);
    const r1 = run(rx, `${base}.20`, [], ["-i", "packet:eth0", "-f", "rx", "-w", "0", "-n", N]);
    if (r1.status !== 0) throw new Error(r1.stderr);
    await Bun.sleep(1500);
    const rxMac = docker("exec", rx, "cat", "/sys/class/net/eth0/address").stdout.trim();
    docker("run", "--rm", "--name", tx, "--network", net, "--ip", `${base}.21`, "--cap-add", "NET_RAW", "-v", `${repo}:/bunmap:ro`, IMAGE,
      "bun", "/bunmap/src/app/pktgen/main.ts", "-i", "packet:eth0", "-f", "tx", "-n", N, "-w", "0", "-s", `${base}.21`, "-d", `${base}.20`, "-D", rxMac);
    // the receiver stops at N, or (losses) on docker stop a second later; its clock ends at the last packet
    await Bun.sleep(1000);
    docker("stop", "-t", "5", rx);
    const out = docker("logs", rx).stdout;
    const m = /Received (\d+) packets .* in ([\d.]+) seconds/.exec(out);
    return m ? Number(m[1]) / Number(m[2]) / 1e6 : NaN;
  } finally {
    docker("rm", "-f", rx, tx);
    docker("network", "rm", net);
  }
}

const res: Record<string, number[]> = { vale: [], bridge: [] };
try {
  for (let i = 0; i < RUNS; i++) for (const d of ["vale", "bridge"] as const) res[d].push(await once(d, i));
} finally {
  if (plugin) { plugin.kill("SIGTERM"); await plugin.exited; }
}
console.log(`container -> container, 60-byte UDP by pktgen on packet:eth0, ${N} packets per run, ${RUNS} runs; ${new Date().toISOString()}`);
console.log("| network | median Mpps received | runs | vs bridge |");
console.log("| --- | --- | --- | --- |");
for (const d of ["vale", "bridge"]) console.log(`| ${d === "vale" ? "vale (bunmap switch, packet:)" : "Docker bridge"} | ${median(res[d]).toFixed(3)} | ${res[d].map((x) => x.toFixed(3)).join(", ")} | ${(median(res[d]) / median(res.bridge)).toFixed(2)} |`);
