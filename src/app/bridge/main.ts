// bun run bridge -i A -i B [-b burst] [-w wait] [-c] [-v]: netmap's bridge on bunmap ports, as an
// NF on the runner (what comes in on one port leaves by the other): zero copy when the ports share
// memory, copy otherwise (or -c); one sync per port per round; sleeps when idle; reports the rate
// each way every second.

import { canSwap } from "../../forward/move.ts";
import { bridgeNf } from "../../nf/bridge.ts";
import { NfRunner, reportFailure, runUntilDone } from "../../nf/runner.ts";
import { openPort } from "../../port/open.ts";
import type { Port } from "../../port/port.ts";
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

/**
 * The bridge's two ports, opened and checked (both frame packets alike: slots move as they are), its
 * zero-copy line printed and its wait done; null after one error line (nothing left open).
 */
export async function openBridge(args: BridgeArgs): Promise<[Port, Port] | null> {
  let pa: Port, pb: Port;
  try {
    pa = openPort(args.a);
    try {
      pb = openPort(args.b);
    } catch (e) {
      pa.close();
      throw e;
    }
    if (pa.hdrLen !== pb.hdrLen) {
      pa.close();
      pb.close();
      throw new Error(
        `${args.a} frames carry a ${pa.hdrLen}-byte virtio-net header, ${args.b} ${pb.hdrLen}: open both alike (vnet=)`,
      );
    }
  } catch (e) {
    process.stderr.write(`bridge: ${(e as Error).message}\n`);
    return null;
  }
  const swap = args.zeroCopy && canSwap(pa, pb);
  process.stdout.write(`------- zerocopy ${swap ? "supported" : "NOT supported"}\n`);
  if (args.wait) {
    D("main", 380, `Wait ${args.wait} secs for link up...`);
    await Bun.sleep(args.wait * 1000);
  }
  return [pa, pb];
}

async function main(): Promise<number> {
  const args = parseCli("bridge", USAGE, parseBridgeArgs);
  if (!args) return 0;
  const opened = await openBridge(args);
  if (!opened) return 1;
  const [pa, pb] = opened;
  const runner = new NfRunner({ a: pa, b: pb }, bridgeNf, { burst: args.burst, copy: !args.zeroCopy });
  // a->b is what b sent, b->a what a sent
  const sent = () => {
    const [a, b] = runner.counters().ports;
    return [b.txPackets, a.txPackets];
  };
  let last = performance.now(),
    lastSent = [0, 0];
  const report = setInterval(() => {
    const now = performance.now(),
      s = (now - last) / 1000,
      cur = sent();
    D(
      "main",
      402,
      `${norm((cur[0] - lastSent[0]) / s, true)}pps a->b ${norm((cur[1] - lastSent[1]) / s, true)}pps b->a`,
    );
    last = now;
    lastSent = cur;
  }, args.reportMs);
  const { failed } = await runUntilDone(runner, args.seconds);
  clearInterval(report);
  const [ab, ba] = sent();
  process.stdout.write(`forwarded ${ab} packets a->b, ${ba} packets b->a\n`);
  runner.close();
  return reportFailure("bridge", failed);
}

if (import.meta.main) await runMain("bridge", main);
