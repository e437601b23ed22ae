// bun run replay -f FILE.pcap -i PORT [-B bw] [-D delay] [-L loss] [-b burst] [-w secs]: netmap's
// nmreplay on bunmap ports. The schedule is worked out ahead (src/nf/replay.ts); the sender then only
// waits for each packet's time (sleeping for long gaps, spinning for the last millisecond) and hands
// the packets due to the port, one txsync per batch. At the end: what was sent, what -L dropped, and
// the timing error (when each packet left against its schedule).
import { existsSync, readFileSync } from "node:fs";
import {
  type Bandwidth,
  type Delay,
  type Loss,
  parseBandwidth,
  parseDelay,
  parseLoss,
  random,
  schedule,
} from "../../nf/replay.ts";
import { parsePcap } from "../../packet/pcap.ts";
import { openPort } from "../../port/open.ts";
import type { Port } from "../../port/port.ts";
import { ArgvReader, intArg, parseCli, runMain, UsageError } from "../cli.ts";
import { withSubsystem } from "../pktgen/portname.ts";
import { D } from "../report.ts";

export interface ReplayArgs {
  file: string;
  port: string;
  bw: Bandwidth;
  delay: Delay;
  loss: Loss;
  burst: number;
  wait: number;
  seed: number;
}

export const USAGE = `usage: bun run replay [-v] [-D delay] [-B {[constant,]bps|ether,bps|real,speedup}] [-L loss]
	[-b burst] [-w wait_s] [--seed N] -f pcap-file -i PORT
  -B   the rate (k, M, G suffixes), with Ethernet framing (ether), or the trace's timing (real, the default)
  -D   added delay: dt, constant,dt, uniform,dmin,dmax, exp,dmin,davg (s, m, u, n suffixes); never reorders
  -L   loss: x or plr,x (packet loss rate), ber,x (bit error rate)
  --seed N   the random numbers of -D and -L (the same schedule for the same seed)`;

export function parseReplayArgs(argv: string[]): ReplayArgs | "help" {
  const r: ReplayArgs = {
    file: "",
    port: "",
    bw: { kind: "real", speedup: 1 },
    delay: { kind: "none" },
    loss: { kind: "none" },
    burst: 32,
    wait: 2,
    seed: 1,
  };
  const args = new ArgvReader(argv);
  for (let a = args.next(); a !== undefined; a = args.next()) {
    const v = () => args.value();
    const checked = <T>(f: () => T): T => {
      try {
        return f();
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
    };
    switch (a) {
      case "-h":
        return "help";
      case "-f":
        r.file = v();
        break;
      case "-i":
        r.port = v();
        break;
      case "-B": {
        const x = v();
        r.bw = checked(() => parseBandwidth(x));
        break;
      }
      case "-D": {
        const x = v();
        r.delay = checked(() => parseDelay(x));
        break;
      }
      case "-L": {
        const x = v();
        r.loss = checked(() => parseLoss(x));
        break;
      }
      case "-b":
        r.burst = intArg("-b", v(), 1, 4096);
        break;
      case "-w":
        r.wait = intArg("-w", v(), 0, 100);
        break;
      case "--seed":
        r.seed = intArg("--seed", v(), 1, 0xffffffff);
        break;
      case "-v":
        break;
      case "-C":
        throw new UsageError("-C: CPU placement is not offered (the sender is one thread; use taskset)");
      default:
        throw new UsageError(`unknown option ${a}`);
    }
  }
  if (!r.file) throw new UsageError("missing -f pcap-file");
  if (!r.port) throw new UsageError("missing -i port");
  return r;
}

const quantile = (a: Float64Array, q: number) => a[Math.min(a.length - 1, Math.floor(q * a.length))];

async function main(): Promise<number> {
  const args = parseCli("replay", USAGE, parseReplayArgs);
  if (!args) return 0;
  const fail = (m: string) => {
    process.stderr.write(`replay: ${m}\n`);
    return 1;
  };
  let data: Uint8Array;
  try {
    data = readFileSync(args.file);
  } catch (e) {
    return fail(
      `-f ${args.file}: ${(e as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (e as Error).message}`,
    );
  }
  let pcap: ReturnType<typeof parsePcap>;
  try {
    pcap = parsePcap(data, args.file);
  } catch (e) {
    return fail((e as Error).message);
  }
  const recs = pcap.records;
  if (!recs.length) return fail(`-f ${args.file}: no packets in it`);
  const len = Int32Array.from(recs, (r) => r.caplen);
  const ts = Float64Array.from(recs, (r) => r.sec + r.frac / (pcap.nanos ? 1e9 : 1e6));
  const sched = schedule(len, ts, args.bw, args.delay, args.loss, random(args.seed));
  // the packets as views, made ahead: nothing is allocated while sending
  const frames = recs.map((r) => data.subarray(r.offset, r.offset + r.caplen));
  let port: Port;
  try {
    port = openPort(withSubsystem(args.port, existsSync("/dev/netmap"), (m) => D("main", 1201, m)));
  } catch (e) {
    return fail((e as Error).message);
  }
  const tx = port.txRings[0];
  let longest = 0;
  for (const l of len) if (l > longest) longest = l;
  if (longest + port.hdrLen > port.bufSize) {
    port.close();
    return fail(
      `-f ${args.file}: a packet of ${longest} bytes is longer than ${args.port}'s buffers (${port.bufSize})`,
    );
  }
  let stop = false;
  const onSignal = () => {
    stop = true;
  };
  process.on("SIGINT", onSignal);
  process.on("SIGTERM", onSignal);
  D("main", 1240, `${recs.length} packets, ${sched.dropped} to be dropped by -L, ${args.file} -> ${args.port}`);
  if (args.wait) await Bun.sleep(args.wait * 1000);
  const err = new Float64Array(recs.length - sched.dropped);
  let sent = 0,
    bytes = 0,
    e = 0,
    i = 0;
  const t0 = performance.now();
  let lastReport = t0;
  while (i < recs.length && !stop) {
    if (sched.at[i] < 0) {
      i++;
      continue;
    }
    const due = t0 + sched.at[i] * 1000;
    let now = performance.now();
    if (due - now > 2) await Bun.sleep(due - now - 1); // long gaps asleep, the last millisecond spun
    while ((now = performance.now()) < due);
    // every packet due by now, up to a batch, then one txsync
    const first = i;
    let n = 0;
    while (i < recs.length && n < args.burst && sched.at[i] * 1000 + t0 <= now) {
      if (sched.at[i] >= 0) {
        while (tx.empty()) port.txsync();
        const j = tx.head,
          o = tx.buf(j) + port.hdrLen;
        if (port.hdrLen) tx.u8.fill(0, o - port.hdrLen, o);
        tx.u8.set(frames[i], o);
        tx.setLenFlags(j, len[i] + port.hdrLen, 0);
        tx.advance(tx.next(j));
        n++;
        bytes += len[i];
      }
      i++;
    }
    port.txsync();
    const left = performance.now();
    for (let k = first; k < i; k++) if (sched.at[k] >= 0) err[e++] = (left - (t0 + sched.at[k] * 1000)) * 1000;
    sent += n;
    if (left - lastReport >= 1000) {
      D("main", 1300, `${sent} packets sent, ${i} of ${recs.length} scheduled`);
      lastReport = left;
    }
  }
  port.txsync();
  const secs = (performance.now() - t0) / 1000;
  port.close();
  const errs = err.subarray(0, e).sort();
  process.stdout.write(
    `Sent ${sent} packets ${bytes} bytes in ${secs.toFixed(6)} seconds; ${sched.dropped} dropped by -L${stop ? " (stopped)" : ""}\n`,
  );
  if (e)
    process.stdout.write(
      `Timing error (left - scheduled): p50 ${quantile(errs, 0.5).toFixed(1)} us, p99 ${quantile(errs, 0.99).toFixed(1)} us, max ${errs[e - 1].toFixed(1)} us\n`,
    );
  return 0;
}

if (import.meta.main) await runMain("replay", main);
