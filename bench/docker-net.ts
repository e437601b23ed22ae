// Benchmark: what containers see on a vale network (bunmap's switch, packet: and xdp: datapaths)
// against Docker's own bridge network, same machine, same run, rounds interleaved. Ordinary programs
// on the containers' kernel stacks: busybox ping (10 ms apart: p50/p99/max RTT, and the first ping of
// a new container), TCP (one connection, 1 GB, bench/c/tcpx.c: static C, every byte checked, shown first
// on a plain veth pair to be faster than every setup), UDP (64-byte datagrams through kernel sockets,
// packets/s received), pings lost by a 10 ms flow while 10 other containers start and stop; then the
// plugin's CPU and memory with 10 idle networks of 2 containers. Addresses: 198.18.0.0/15 only.
//   bun bench/docker-net.ts [ROUNDS=1] [SETUPS]  (root, Docker engine running; ~2 min a round)
//   SETUPS: comma-separated subset of packet,xdp,bridge,idle (default: all)
import { readFileSync } from "node:fs";
import { IMAGE } from "../tests/helpers/docker-image.ts";
import { docker, dockerAsync, PluginProc } from "../tests/helpers/plugin-proc.ts";
import { dockerBenchReady } from "./lib/docker-bench.ts";
import { lost, median, q, times } from "./lib/stats.ts";
import { TCP_BYTES, TCPX, tcpxHost, tcpxOnVeth, tcpxRate } from "./lib/tcpx.ts";

const ROUNDS = Number(process.argv[2] ?? 1);
const repo = `${import.meta.dir}/..`;
const tag = `bn${process.pid}`;
const say = (s: string) => process.stderr.write(`${new Date().toISOString().slice(11, 19)} ${s}\n`);

interface Setup {
  label: string;
  driver: string;
  opts: string[];
  subnet: number;
}
const ALL: (Setup & { key: string })[] = [
  { key: "packet", label: "vale, packet", driver: "vale", opts: ["-o", "backend=packet"], subnet: 20 },
  { key: "xdp", label: "vale, xdp", driver: "vale", opts: ["-o", "backend=xdp"], subnet: 21 },
  { key: "bridge", label: "Docker bridge", driver: "bridge", opts: [], subnet: 22 },
];
const pick = (process.argv[3] ?? "packet,xdp,bridge,idle").split(",");
const SETUPS: Setup[] = ALL.filter((s) => pick.includes(s.key));
interface Row {
  pingP50: number;
  pingP99: number;
  pingMax: number;
  first: number;
  tcp: number;
  udp: number;
  churnLost: number;
}

dockerBenchReady();
const plugin = new PluginProc();
await plugin.start();
const made = new Set<string>(),
  nets = new Set<string>();
const cleanup = () => {
  if (made.size) docker("rm", "-f", ...made);
  for (const n of nets) docker("network", "rm", n);
  made.clear();
  nets.clear();
};

async function network(s: Setup, name: string): Promise<string> {
  const r = await dockerAsync(
    "network",
    "create",
    "-d",
    s.driver,
    "--subnet",
    `198.18.${s.subnet}.0/24`,
    ...s.opts,
    name,
  );
  if (r.code !== 0) throw new Error(`${s.label}: ${r.err}`);
  nets.add(name);
  return name;
}
async function box(name: string, net: string, ip: string): Promise<void> {
  const r = await dockerAsync(
    "run",
    "-d",
    "--name",
    name,
    "--network",
    net,
    "--ip",
    ip,
    "-v",
    `${repo}:/bunmap:ro`,
    IMAGE,
  );
  if (r.code !== 0) throw new Error(r.err);
  made.add(name);
}

async function measure(s: Setup, round: number): Promise<Row> {
  const net = await network(s, `${tag}${s.subnet}r${round}`);
  const base = `198.18.${s.subnet}`,
    a = `${net}a`,
    b = `${net}b`;
  await box(a, net, `${base}.10`);
  await box(b, net, `${base}.11`);
  docker("exec", a, "ping", "-c", "2", "-W", "2", `${base}.11`); // neighbours resolved
  const ping = times(docker("exec", a, "ping", "-i", "0.01", "-c", "300", `${base}.11`).stdout);
  const first =
    times(
      (await dockerAsync("run", "--rm", "--network", net, IMAGE, "ping", "-c", "1", "-W", "2", `${base}.11`)).out,
    )[0] ?? NaN;
  // TCP: static C, 1 GB, every byte checked (bench/lib/tcpx.ts)
  docker("exec", "-d", b, "sh", "-c", `${TCPX} server 5001 > /tmp/tcp.out`);
  await Bun.sleep(500);
  const tcpOut = docker("exec", a, TCPX, "client", `${base}.11`, "5001", TCP_BYTES).stdout;
  await Bun.sleep(300);
  if (!docker("exec", b, "cat", "/tmp/tcp.out").stdout.includes(`got ${TCP_BYTES} ok`))
    throw new Error(`${s.label}: the TCP stream arrived incomplete or changed: ${tcpOut}`);
  const tcp = tcpxRate(tcpOut);
  // UDP
  docker("exec", "-d", b, "sh", "-c", "bun /bunmap/bench/helpers/udp-flood.ts recv 5002 2000 > /tmp/udp.out");
  await Bun.sleep(700);
  docker("exec", a, "bun", "/bunmap/bench/helpers/udp-flood.ts", "send", `${base}.11`, "5002", "3000");
  let udp = NaN;
  for (let t = 0; t < 30 && Number.isNaN(udp); t++) {
    const m = /recv \d+ (\d+)/.exec(docker("exec", b, "cat", "/tmp/udp.out").stdout);
    if (m) udp = Number(m[1]);
    else await Bun.sleep(100);
  }
  // churn beside a 10 ms flow
  const flow = dockerAsync("exec", a, "ping", "-i", "0.01", "-c", "1000", "-W", "2", `${base}.11`);
  await Bun.sleep(200);
  for (let i = 0; i < 10; i += 2)
    await Promise.all([0, 1].map(() => dockerAsync("run", "--rm", "--network", net, IMAGE, "true")));
  const churnLost = lost((await flow).out);
  docker("rm", "-f", a, b);
  made.delete(a);
  made.delete(b);
  docker("network", "rm", net);
  nets.delete(net);
  return { pingP50: median(ping), pingP99: q(ping, 0.99), pingMax: Math.max(...ping), first, tcp, udp, churnLost };
}

/** CPU share of one core and resident memory of the plugin process over `ms`. */
async function usage(pid: number, ms: number): Promise<{ cpu: number; rssMB: number }> {
  // utime and stime, fields 14 and 15 of /proc/PID/stat (11 and 12 after the command name)
  const ticks = () => {
    const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
    return Number(f[11]) + Number(f[12]);
  };
  const t0 = ticks(),
    w0 = performance.now();
  await Bun.sleep(ms);
  const cpu = (ticks() - t0) / 100 / ((performance.now() - w0) / 1000);
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const kB = (k: string) => Number(new RegExp(`${k}:\\s+(\\d+)`).exec(status)?.[1] ?? 0) / 1024;
  say(
    `  RSS ${kB("VmRSS").toFixed(0)} MB: anon ${kB("RssAnon").toFixed(0)}, file ${kB("RssFile").toFixed(0)}, shmem ${kB("RssShmem").toFixed(0)}`,
  );
  return { cpu, rssMB: kB("VmRSS") };
}

const rows = new Map<string, Row[]>(SETUPS.map((s) => [s.label, []]));
const tool: number[] = [];
try {
  tcpxHost(); // built before the containers look for it
  for (let r = 0; r < ROUNDS; r++) {
    tool.push(tcpxOnVeth(`${tag}t`));
    say(`round ${r + 1}/${ROUNDS}: the TCP tool on a plain veth pair: ${tool.at(-1)} MB/s`);
    for (const s of r % 2 ? [...SETUPS].reverse() : SETUPS) {
      say(`round ${r + 1}/${ROUNDS}: ${s.label}`);
      const row = await measure(s, r);
      say(
        `  ping p50 ${row.pingP50} ms p99 ${row.pingP99} ms, first ${row.first} ms, TCP ${row.tcp} MB/s, UDP ${row.udp} pps, lost in churn ${row.churnLost}`,
      );
      rows.get(s.label)!.push(row);
    }
  }
  printTable();
  if (pick.includes("idle")) {
    say("plugin with no network");
    const empty = await usage(plugin.pid, 5000);
    say("10 idle networks of 2 containers (packet datapath)");
    for (let i = 0; i < 10; i++) {
      const net = await network({ ...ALL[0], subnet: 40 + i }, `${tag}idle${i}`);
      await Promise.all([box(`${net}a`, net, `198.18.${40 + i}.10`), box(`${net}b`, net, `198.18.${40 + i}.11`)]);
      docker("exec", `${net}a`, "ping", "-c", "1", "-W", "2", `198.18.${40 + i}.11`);
    }
    await Bun.sleep(3000);
    const idle = await usage(plugin.pid, 10_000);
    console.log(
      `\nplugin process: no network ${(empty.cpu * 100).toFixed(2)}% of a core, ${empty.rssMB.toFixed(0)} MB RSS; ` +
        `10 idle networks × 2 containers: ${(idle.cpu * 100).toFixed(2)}% of a core, ${idle.rssMB.toFixed(0)} MB RSS`,
    );
  }
} finally {
  cleanup();
  await plugin.dispose();
}

function printTable(): void {
  const med = (label: string, k: keyof Row) => median(rows.get(label)!.map((x) => x[k]));
  const all = (label: string, k: keyof Row) =>
    rows
      .get(label)!
      .map((x) => x[k])
      .join(", ");
  console.log(`\ncontainers on one network, kernel sockets; ${ROUNDS} round(s), medians; ${new Date().toISOString()}`);
  console.log(`| | ${SETUPS.map((s) => s.label).join(" | ")} |`);
  console.log(`| --- | ${SETUPS.map(() => "---").join(" | ")} |`);
  const line = (name: string, k: keyof Row, unit = "") =>
    console.log(
      `| ${name} | ${SETUPS.map((s) => `${med(s.label, k)}${unit}${ROUNDS > 1 ? ` (${all(s.label, k)})` : ""}`).join(" | ")} |`,
    );
  line("ping RTT p50, 300 × 10 ms", "pingP50", " ms");
  line("ping RTT p99", "pingP99", " ms");
  line("ping RTT max", "pingMax", " ms");
  line("first ping of a new container", "first", " ms");
  line("TCP, one connection, 1 GB (tcpx)", "tcp", " MB/s");
  line("UDP 64 B, kernel sockets, received", "udp", " pps");
  line("pings lost (1000 × 10 ms) while 10 containers start and stop", "churnLost");
  console.log(`\nthe TCP tool on a plain veth pair: ${median(tool)} MB/s (${tool.join(", ")})`);
}
