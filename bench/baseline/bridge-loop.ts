// The bridge as it was before it ran on the NF runner (commit 81ad5bb): a hand-written loop of
// rings_move over the two ports. Kept for bench/nf-runner.ts, the "no slower" comparison; flags as
// bun run bridge.

import { openBridge, parseBridgeArgs, USAGE } from "../../src/app/bridge/main.ts";
import { parseCli, runMain } from "../../src/app/cli.ts";
import { D, norm } from "../../src/app/report.ts";
import { canSwap, moveRings } from "../../src/forward/move.ts";
import type { Port } from "../../src/port/port.ts";
import { POLLIN } from "../../src/ring/layout.ts";

async function main(): Promise<number> {
  const args = parseCli("bridge", USAGE, parseBridgeArgs);
  if (!args) return 0;
  const opened = await openBridge(args);
  if (!opened) return 1;
  const [pa, pb] = opened;
  const swap = args.zeroCopy && canSwap(pa, pb);
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
