// Macro benchmark: what the NF runner costs against hand-written loops on the same ports, and whether
// bridge and router, now NFs on the runner, are slower for it. pktgen tx -> a middle process ->
// pktgen rx, over two shm pipes of one region (so the middle swaps buffers, never copies), 60-byte
// frames. The middles, interleaved: the bridge as it was (bench/baseline/bridge-loop.ts: a loop of
// rings_move written by hand) and as it is (bun run bridge: bridgeNf on the runner); bun run nf with
// a one-NF graph that passes every packet on; the router as it was (bench/baseline/router-loop.ts)
// and as it is (bun run router: RouterNf.process on the runner), two ports, client -> server. Medians
// of RUNS runs; the receiver's Mpps. Three busy processes share this machine's cores: the ratios are
// the figures.
//   bun bench/nf-runner.ts [RUNS=5] [PACKETS=20000000]
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { parseMac } from "../src/packet/ethernet.ts";
import { parseIPv4 } from "../src/packet/ipv4.ts";
import { UdpFlow } from "../src/packet/udpflow.ts";
import { openPort } from "../src/port/open.ts";
import { say } from "./lib/progress.ts";
import { median } from "./lib/stats.ts";

const RUNS = Number(process.argv[2] ?? 5);
const N = String(process.argv[3] ?? 20_000_000);
const repo = `${import.meta.dir}/..`;
const pktgen = `${repo}/src/app/pktgen/main.ts`;
const dir = mkdtempSync(`${tmpdir()}/bunmap-nfbench-`);
// the router's three hosts (on shm pipes only: nothing leaves this machine)
const CLIENT = "198.18.7.2",
  ROUTER = "198.18.7.1",
  SERVER = "198.18.7.3";

const MIDDLES = {
  "bridge-loop": "bridge as it was (hand-written loop)",
  bridge: "bun run bridge (bridgeNf on the runner)",
  nf: "bun run nf, one pass-through NF (the runner)",
  "router-loop": "router as it was (its own loop)",
  router: "bun run router (RouterNf on the runner)",
} as const;
type Middle = keyof typeof MIDDLES;

/** One frame from the server to the router, so the router knows the server's MAC before the flow. */
function serverSpeaks(port: string): void {
  const r = (a: string, p: number) => ({ v6: false, start: parseIPv4(a), end: parseIPv4(a), port0: p, port1: p });
  const f = new UdpFlow({
    v6: false,
    srcMac: parseMac("02:00:00:00:07:03"),
    dstMac: parseMac("02:00:00:00:07:01"),
    src: r(SERVER, 7000),
    dst: r(ROUTER, 4000),
    size: 60,
    minSize: 0,
    randomSrc: false,
    randomDst: false,
    stampBytes: 0,
    vnetHdr: 0,
  }).frame;
  const p = openPort(port),
    tx = p.txRings[0];
  tx.u8.set(f, tx.buf(tx.head));
  tx.setLenFlags(tx.head, f.length, 0);
  tx.advance(tx.next(tx.head));
  p.txsync();
  p.close();
}

async function once(middle: Middle): Promise<number> {
  const r = `nfb${process.pid}${Math.floor(Math.random() * 1e6)}`;
  const a = `shm:${r}{0@conf:pipes=2`,
    b = `shm:${r}{1`;
  writeFileSync(
    `${dir}/pass.ts`,
    `export default { ports: { a: "${a}", b: "${b}" }, nfs: { pass: { nf: () => 0, to: ["b"] } }, from: { a: "pass" } };\n`,
  );
  const routerArgs = ["-i", a, "-i", b, "--ip", ROUTER, "--client", CLIENT, "--server", SERVER];
  const cmd: Record<Middle, string[]> = {
    "bridge-loop": [`${repo}/bench/baseline/bridge-loop.ts`, "-i", a, "-i", b, "-w", "0"],
    bridge: [`${repo}/src/app/bridge/main.ts`, "-i", a, "-i", b, "-w", "0"],
    nf: [`${repo}/src/app/nf/main.ts`, `${dir}/pass.ts`],
    "router-loop": [`${repo}/bench/baseline/router-loop.ts`, ...routerArgs],
    router: [`${repo}/src/app/router/main.ts`, ...routerArgs],
  };
  const mid = Bun.spawn([process.execPath, ...cmd[middle]], { stdout: "pipe", stderr: "ignore" });
  const mr = mid.stdout.getReader();
  let mo = "";
  while (!/zerocopy|running|router /.test(mo)) {
    const { value, done } = await mr.read();
    if (done) throw new Error(`${middle} exited: ${mo}`);
    mo += new TextDecoder().decode(value);
  }
  const routed = middle.startsWith("router");
  if (routed) serverSpeaks(`shm:${r}}1`);
  const rx = Bun.spawn([process.execPath, pktgen, "-i", `shm:${r}}1`, "-f", "rx", "-n", N], {
    stdout: "pipe",
    stderr: "ignore",
  });
  const reader = rx.stdout.getReader();
  let out = "";
  while (!out.includes("Receiving from")) {
    const { value, done } = await reader.read();
    if (done) throw new Error(`receiver exited: ${out}`);
    out += new TextDecoder().decode(value);
  }
  const addrs = routed ? ["-s", CLIENT, "-d", ROUTER] : [];
  const tx = Bun.spawn([process.execPath, pktgen, "-i", `shm:${r}}0`, "-f", "tx", "-n", N, ...addrs], {
    stdout: "pipe",
    stderr: "ignore",
  });
  const txOut = await new Response(tx.stdout).text();
  await tx.exited;
  // the old router loop drops what does not fit (no backpressure): the receiver may never see N
  if (routed) setTimeout(() => rx.kill("SIGINT"), 500);
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    out += new TextDecoder().decode(value);
  }
  await rx.exited;
  mid.kill("SIGINT");
  await mid.exited;
  const m = /Received (\d+) packets/.exec(out);
  const s = /Speed: ([\d.]+) ([KMG]?)pps/.exec(out);
  if (routed) {
    // delivered over the sender's time (the receiver's clock ran on after the flow); the router's
    // ARP requests may reach the receiver too, so at most N of what came is counted
    const t = /Sent \d+ packets \d+ bytes \d+ events \d+ bytes each in ([\d.]+) seconds/.exec(txOut);
    if (!m || !t) throw new Error(`bad output:\n${txOut}\n${out}`);
    const got = Math.min(Number(m[1]), Number(N));
    lost[middle] = Math.max(lost[middle] ?? 0, 1 - got / Number(N));
    return got / Number(t[1]) / 1e6;
  }
  if (!m || !s || m[1] !== N) throw new Error(`bad receiver output:\n${out}`);
  return Number(s[1]) * ({ "": 1e-6, K: 1e-3, M: 1, G: 1e3 } as Record<string, number>)[s[2]];
}
const lost: Partial<Record<Middle, number>> = {};

try {
  const order = (process.env.MIDDLES?.split(",") ?? Object.keys(MIDDLES)) as Middle[];
  const res = Object.fromEntries(order.map((m) => [m, [] as number[]])) as Record<Middle, number[]>;
  for (let i = 0; i < RUNS; i++)
    for (const m of order) {
      res[m].push(await once(m));
      say(`run ${i + 1}/${RUNS} ${m}: ${res[m].at(-1)?.toFixed(2)} Mpps`);
    }
  console.log(`pktgen tx -> middle -> pktgen rx over shm pipes (buffers swapped), 60 B, ${N} packets, ${RUNS} runs`);
  console.log("| middle | median Mpps | runs | / as it was |");
  console.log("| --- | --- | --- | --- |");
  const base: Record<Middle, Middle> = {
    "bridge-loop": "bridge-loop",
    bridge: "bridge-loop",
    nf: "bridge-loop",
    "router-loop": "router-loop",
    router: "router-loop",
  };
  for (const m of order)
    console.log(
      `| ${MIDDLES[m]} | ${median(res[m]).toFixed(2)} | ${res[m].map((x) => x.toFixed(2)).join(", ")} | ${(median(res[m]) / median(res[base[m]] ?? [Number.NaN])).toFixed(2)} |`,
    );
  for (const [m, l] of Object.entries(lost))
    if (l) console.log(`${m}: lost up to ${(l * 100).toFixed(2)}% of a run's packets`);
} finally {
  rmSync(dir, { recursive: true, force: true });
}
