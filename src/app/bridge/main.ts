// bun run bridge -i A -i B [-b burst] [-w wait] [-c] [-v]: netmap's bridge on bunmap ports.
// Forwards both ways; zero copy when the ports share memory, copy otherwise; one thread, one
// sync per batch per port; reports the rate each way every second.

import { canSwap, moveRings } from "../../forward/move.ts";
import { openPort } from "../../port/open.ts";
import type { Port } from "../../port/port.ts";
import { POLLIN } from "../../ring/layout.ts";
import { intArg, parseCli, runMain, UsageError } from "../cli.ts";
import { D, norm } from "../report.ts";

export interface BridgeArgs {
  a: string;
  b: string;
  burst: number;
  wait: number;
  zeroCopy: boolean;
  verbose: boolean;
  reportMs: number;
  seconds: number;
}

export function parseBridgeArgs(argv: string[]): BridgeArgs | "help" {
  const ifs: string[] = [];
  const r: BridgeArgs = {
    a: "",
    b: "",
    burst: 1024,
    wait: 4,
    zeroCopy: true,
    verbose: false,
    reportMs: 1000,
    seconds: 0,
  };
  const num = (f: string, v: string | undefined, lo: number, hi: number) => intArg(`-${f}`, v, lo, hi);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    switch (a) {
      case "-h":
        return "help";
      case "-i":
        if (argv[i + 1] === undefined) throw new UsageError("-i needs a port");
        ifs.push(argv[++i]);
        break;
      case "-b":
        r.burst = num("b", argv[++i], 1, 8192);
        break;
      case "-w":
        r.wait = num("w", argv[++i], 0, 100);
        break;
      case "-T":
        r.reportMs = num("T", argv[++i], 10, 3_600_000);
        break;
      case "-t":
        r.seconds = num("t", argv[++i], 0, 86400);
        break;
      case "-c":
        r.zeroCopy = false;
        break;
      case "-v":
        r.verbose = true;
        break;
      default:
        if (!a.startsWith("-") && ifs.length < 2) ifs.push(a);
        else throw new UsageError(`unknown argument '${a}'`);
    }
  }
  if (ifs.length !== 2) throw new UsageError("need two ports: -i A -i B");
  if (ifs[0] === ifs[1]) throw new UsageError("the two ports must differ");
  [r.a, r.b] = ifs;
  return r;
}

export const USAGE = `Usage: bun run bridge -i PORT_A -i PORT_B [-b burst(1024)] [-w wait_s(4)] [-c no zero copy] [-T report_ms] [-t seconds] [-v]`;

async function main(): Promise<number> {
  const args = parseCli("bridge", USAGE, parseBridgeArgs);
  if (!args) return 0;
  let pa: Port, pb: Port;
  try {
    pa = openPort(args.a);
    try {
      pb = openPort(args.b);
    } catch (e) {
      pa.close();
      throw e;
    }
    // slots move as they are: both sides must frame packets alike
    if (pa.hdrLen !== pb.hdrLen) {
      pa.close();
      pb.close();
      throw new Error(
        `${args.a} frames carry a ${pa.hdrLen}-byte virtio-net header, ${args.b} ${pb.hdrLen}: open both alike (vnet=)`,
      );
    }
  } catch (e) {
    process.stderr.write(`bridge: ${(e as Error).message}\n`);
    return 1;
  }
  const swap = args.zeroCopy && canSwap(pa, pb);
  process.stdout.write(`------- zerocopy ${swap ? "supported" : "NOT supported"}\n`);
  if (args.wait) {
    D("main", 380, `Wait ${args.wait} secs for link up...`);
    await Bun.sleep(args.wait * 1000);
  }
  let stop = false;
  process.on("SIGINT", () => {
    stop = true;
  });
  process.on("SIGTERM", () => {
    stop = true;
  });
  const ab = { pkts: 0 },
    ba = { pkts: 0 };
  const maxAB = pb.bufSize,
    maxBA = pa.bufSize;
  let last = performance.now(),
    lastAB = 0,
    lastBA = 0;
  const end = args.seconds ? performance.now() + args.seconds * 1000 : Infinity;
  // the datapath runs in slices so signals and reports get through; each slice is a tight loop
  while (!stop && performance.now() < end) {
    const sliceEnd = performance.now() + 50;
    let idle = 0;
    while (performance.now() < sliceEnd) {
      const m = move(pa, pb, args.burst, swap, maxAB);
      const n = move(pb, pa, args.burst, swap, maxBA);
      ab.pkts += m;
      ba.pkts += n;
      // one sync per port and direction per round: hand over what moved, release what was read
      pb.txsync();
      pa.txsync();
      pa.rxsync();
      pb.rxsync();
      if (m + n) {
        idle = 0;
        continue;
      }
      // nothing to do for a while: sleep in poll (1 ms) instead of spinning
      if (++idle > 64 && !(pa.poll(POLLIN, 1) & POLLIN)) pb.poll(POLLIN, 0);
    }
    const now = performance.now();
    if (now - last >= args.reportMs) {
      const s = (now - last) / 1000;
      D("main", 402, `${norm((ab.pkts - lastAB) / s, true)}pps a->b ${norm((ba.pkts - lastBA) / s, true)}pps b->a`);
      last = now;
      lastAB = ab.pkts;
      lastBA = ba.pkts;
    }
    await Bun.sleep(0); // let signal handlers run
  }
  process.stdout.write(`forwarded ${ab.pkts} packets a->b, ${ba.pkts} packets b->a\n`);
  pa.close();
  pb.close();
  return 0;
}

/** ports_move: every rx ring of src into the tx rings of dst, round robin. */
function move(src: Port, dst: Port, burst: number, swap: boolean, maxLen: number): number {
  let moved = 0,
    t = 0;
  for (const rx of src.rxRings) {
    let guard = dst.txRings.length;
    while (!rx.empty() && guard-- > 0) {
      const tx = dst.txRings[t];
      moved += moveRings(rx, tx, burst - moved, swap, maxLen);
      if (!rx.empty()) t = (t + 1) % dst.txRings.length;
      if (moved >= burst) return moved;
    }
  }
  return moved;
}

if (import.meta.main) await runMain("bridge", main);
