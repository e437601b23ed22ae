// The link emulator measured with captures on both sides (issue 23): sender (pktgen txseq on a veth
// in namespace A) -> tlem on two veths in namespace T -> namespace B; tcpdump timestamps each frame as
// it reaches tlem's first veth and as it reaches B, both from the kernel's clock, outside tlem. Frames
// are matched by pktgen's sequence number. This kernel has no netem to set beside it: the aims are
// absolute. Three measures, RUNS runs each, interleaved:
//   delay: -B 100M -D 1m, 1000-byte frames at 1200/s (9.6% load): error = (arrival - departure) -
//          (1 ms + the frame's time on a 100 Mbit/s link); aim p99 <= 50 us
//   rate:  -B 10M, 1000-byte frames offered at 16 Mbit/s: bits reaching B over the time they took;
//          aim within 1% of 10 Mbit/s
//   floor: a C thread timing 2000 deadlines 833 us apart (bench/c/deadline.c), alone: what this
//          machine lets any program do (a VM whose vCPUs the host takes away now and then)
// tlem takes each frame's arrival from the kernel (AF_PACKET's frame timestamp), so the error is its
// exit's lateness plus the two veth hops.
// Root only (namespaces); everything stays on the veths it makes (198.18.20.0/24 inside the frames).
//   bun bench/tlem-veth.ts [RUNS=5]
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { destroyPair, makePair, privilegedUnavailable } from "../tests/helpers/netns.ts";
import { capturedBy, startCapture, u32At } from "../tests/helpers/tcpdump.ts";
import { buildC } from "./lib/cc.ts";
import { say } from "./lib/progress.ts";
import { median, q } from "./lib/stats.ts";

const RUNS = Number(process.argv[2] ?? 5);
const why = privilegedUnavailable();
if (why) {
  console.log(`tlem-veth: not run: ${why}`);
  process.exit(0);
}
const repo = `${import.meta.dir}/..`;
const deadline = buildC("deadline");
const SEQ_AT = 14 + 20 + 8; // pktgen's sequence number: the first 4 bytes of the UDP payload
const dir = mkdtempSync(`${tmpdir()}/bunmap-tlemveth-`);
const tag = `tv${process.pid % 10000}`;
// A --(a0|a1)-- T --(b1|b0)-- B: two pairs, the second's first end moved into T
const p1 = makePair(`${tag}x`),
  p2 = makePair(`${tag}y`);
const [A, T, B] = [p1.a, p1.b, p2.b];
const [a0, a1, b1, b0] = [p1.ifA, p1.ifB, p2.ifA, p2.ifB];
const sh = (cmd: string[]) => {
  const r = Bun.spawnSync(cmd, { stderr: "pipe" });
  if (r.exitCode !== 0) throw new Error(`${cmd.join(" ")}: ${r.stderr.toString().trim()}`);
};
sh(["ip", "-n", p2.a, "link", "set", b1, "netns", T]);
sh(["ip", "-n", T, "link", "set", b1, "up"]);

async function waitLine(stream: ReadableStream<Uint8Array>, re: RegExp): Promise<void> {
  const r = stream.getReader();
  let s = "";
  while (!re.test(s)) {
    const { value, done } = await r.read();
    if (done) throw new Error(`ended before ${re}: ${s}`);
    s += new TextDecoder().decode(value);
  }
  r.releaseLock();
}

/** Send `n` frames of `len` bytes at `pps` through tlem with `tlemArgs`; each frame's departure from
 * A and arrival at B (ns), by sequence number. */
async function through(tlemArgs: string[], n: number, pps: number, len: number) {
  const fa = `${dir}/a.pcap`,
    fb = `${dir}/b.pcap`;
  // the sender's frames as they reach tlem's veth (pktgen's packet: port bypasses the qdisc, so a
  // capture of what leaves a0 would see nothing)
  // (buffered: tcpdump woken per frame took the CPU tlem needed, p50 error 45 us against 3.5)
  const ca = await startCapture(T, a1, "in", fa, "udp", 64, false),
    cb = await startCapture(B, b0, "in", fb, "udp", 64, false);
  const tl = Bun.spawn(
    [
      "ip",
      "netns",
      "exec",
      T,
      process.execPath,
      `${repo}/src/app/tlem/main.ts`,
      "-i",
      `packet:${a1}`,
      "-i",
      `packet:${b1}`,
      "-w",
      "0",
      ...tlemArgs,
    ],
    { stdout: "ignore", stderr: "pipe" },
  );
  await waitLine(tl.stderr, /Ready/);
  const tx = Bun.spawn(
    [
      "ip",
      "netns",
      "exec",
      A,
      process.execPath,
      `${repo}/src/app/pktgen/main.ts`,
      "-i",
      `packet:${a0}`,
      "-f",
      "txseq",
      "-n",
      `${n}`,
      "-R",
      `${pps}`,
      "-l",
      `${len}`,
      "-s",
      "198.18.20.1",
      "-d",
      "198.18.20.2",
      "-w",
      "0",
    ],
    { stdout: "ignore", stderr: "ignore" },
  );
  await tx.exited;
  await Bun.sleep(1500); // the last frames through the link
  tl.kill("SIGINT");
  await Promise.all([tl.exited, ca.stop(), cb.stop()]);
  const bySeq = u32At(SEQ_AT);
  return { sent: capturedBy(fa, bySeq), got: capturedBy(fb, bySeq) };
}

const BW = 100e6,
  DELAY_US = 1000;
async function delayRun(): Promise<number[]> {
  const { sent, got } = await through(["-B", "100M", "-D", "1m", "-Q", "1000000"], 2000, 1200, 1000);
  // the link's model, worked out here from the captures alone: a frame is through the bandwidth
  // at max(its arrival, the previous one's) + its bits / rate, and arrives that plus the delay
  const err: number[] = [];
  const start = Math.min(...[...sent.values()].map((v) => v.us));
  let prevDone = 0;
  for (const [seq, s] of [...sent].sort((x, y) => x[0] - y[0])) {
    const t = s.us - start; // us since the first
    const done = Math.max(t, prevDone) + (s.len * 8 * 1e6) / BW;
    prevDone = done;
    const g = got.get(seq);
    if (g) err.push(g.us - start - (done + DELAY_US));
  }
  if (err.length < 1900) throw new Error(`delay run: only ${err.length} of 2000 frames matched`);
  return err;
}

async function rateRun(): Promise<number> {
  const { got } = await through(["-B", "10M", "-Q", "4000000"], 2000, 2000, 1000);
  const rows = [...got.values()].sort((x, y) => x.us - y.us);
  if (rows.length < 1990) throw new Error(`rate run: only ${rows.length} of 2000 frames arrived`);
  // the first frame's arrival starts the clock: the bits of the others over the time they took
  const bits = rows.slice(1).reduce((a, r) => a + r.len * 8, 0);
  return bits / (rows[rows.length - 1].us - rows[0].us); // bits per us = Mbit/s
}

try {
  const p50: number[] = [],
    p99: number[] = [],
    max: number[] = [],
    min: number[] = [],
    rate: number[] = [],
    f99: number[] = [],
    fmax: number[] = [];
  for (let i = 0; i < RUNS; i++) {
    const e = await delayRun();
    p50.push(q(e, 0.5));
    p99.push(q(e, 0.99));
    max.push(Math.max(...e));
    min.push(Math.min(...e));
    rate.push(await rateRun());
    const fl = new TextDecoder().decode(Bun.spawnSync([deadline, "2000", "833"]).stdout);
    const m = /p99 ([\d.]+) us, max ([\d.]+) us/.exec(fl);
    if (!m) throw new Error(`deadline probe: ${fl}`);
    f99.push(Number(m[1]));
    fmax.push(Number(m[2]));
    say(
      `run ${i + 1}/${RUNS}: delay error p50 ${p50.at(-1)?.toFixed(1)} us, p99 ${p99.at(-1)?.toFixed(1)} us, rate ${rate.at(-1)?.toFixed(3)} Mbit/s; floor p99 ${m[1]} us`,
    );
  }
  console.log(`tlem between veths, captured with tcpdump on both sides: ${RUNS} runs`);
  console.log("| measure | median | runs | aim |");
  console.log("| --- | --- | --- | --- |");
  const row = (m: string, a: number[], aim: string, d = 1) =>
    console.log(`| ${m} | ${median(a).toFixed(d)} | ${a.map((x) => x.toFixed(d)).join(", ")} | ${aim} |`);
  row("delay error p50, 1 ms at 9.6% of 100 Mbit/s (us)", p50, "");
  row("delay error p99 (us)", p99, "<= 50");
  row("delay error max (us)", max, "");
  row("delay error min (us; < 0: early)", min, "");
  row("floor: a C thread's deadline lateness p99 (us)", f99, "");
  row("floor: max (us)", fmax, "");
  row("rate for 10 Mbit/s (Mbit/s)", rate, "within 1%", 3);
} finally {
  destroyPair(p1);
  destroyPair(p2);
  if (!process.env.KEEP) rmSync(dir, { recursive: true, force: true });
}
