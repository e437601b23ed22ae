// bun run tlem -i A -i B [-B bps] [-D delay] [-L loss] [-Q qsize] [-b burst] [-w secs]: netmap's tlem
// on bunmap ports, as a network function on the runner (src/nf/tlem.ts): one emulated link each way.
// -B, -D, -L and -Q given once set both directions; given twice, the first is A -> B, the second
// B -> A (as tlem). On exit (SIGINT, SIGTERM, -t): the counters per port and per reason.
import { existsSync } from "node:fs";
import { type Delay, type Loss, parseBandwidth, parseDelay, parseLoss, random } from "../../nf/replay.ts";
import { formatCounters, NfRunner, reportFailure, runUntilDone } from "../../nf/runner.ts";
import { type LinkConfig, LinkEmulator, TLEM_REASONS } from "../../nf/tlem.ts";
import { ArgvReader, intArg, parseCli, runMain, UsageError } from "../cli.ts";
import { withSubsystem } from "../pktgen/portname.ts";
import { D } from "../report.ts";

export const USAGE = `usage: bun run tlem [-D delay] [-B bps] [-L loss] [-Q qsize] [-b burst] [-w wait_s] [-t secs]
	[--seed N] [--stats json] -i ifa -i ifb
  -B bps | constant,bps     the link's rate (k, M, G suffixes); 0 or absent: no limit
  -D dt | constant,dt | uniform,dmin,dmax | exp,dmin,davg    the delay (s, m, u, n suffixes)
  -L x | plr,x | ber,x      losses     -Q bytes   the queue before the bandwidth (default 50000)
  each of -B -D -L -Q once: both ways; twice: ifa -> ifb, then ifb -> ifa`;

export interface TlemArgs {
  a: string;
  b: string;
  links: [LinkConfig, LinkConfig];
  burst: number;
  wait: number;
  seconds: number;
  seed: number;
  json: boolean;
}

export function parseTlemArgs(argv: string[]): TlemArgs | "help" {
  const ifs: string[] = [];
  const given: Record<"B" | "D" | "L" | "Q", string[]> = { B: [], D: [], L: [], Q: [] };
  const r = { burst: 1024, wait: 2, seconds: 0, seed: 1, json: false };
  const args = new ArgvReader(argv);
  for (let a = args.next(); a !== undefined; a = args.next()) {
    const v = () => args.value();
    if (a === "-h") return "help";
    else if (a === "-i") ifs.push(v());
    else if (a === "-B" || a === "-D" || a === "-L" || a === "-Q") {
      const list = given[a[1] as keyof typeof given];
      if (list.length === 2) throw new UsageError(`${a}: at most twice (ifa -> ifb, then ifb -> ifa)`);
      list.push(v());
    } else if (a === "-b") r.burst = intArg("-b", v(), 1, 8192);
    else if (a === "-w") r.wait = intArg("-w", v(), 0, 100);
    else if (a === "-t") r.seconds = intArg("-t", v(), 0, 86400);
    else if (a === "--seed") r.seed = intArg("--seed", v(), 1, 0xffffffff);
    else if (a === "--stats") {
      const f = v();
      if (f !== "json" && f !== "text") throw new UsageError(`--stats ${f}: use json or text`);
      r.json = f === "json";
    } else if (a === "-v") continue;
    else throw new UsageError(`unknown option ${a}`);
  }
  if (ifs.length !== 2) throw new UsageError("need two interfaces: -i ifa -i ifb");
  if (ifs[0] === ifs[1]) throw new UsageError(`must specify two different interfaces ${ifs[0]} ${ifs[1]}`);
  const link = (k: 0 | 1): LinkConfig => {
    const pick = (l: string[]) => l[Math.min(k, l.length - 1)];
    const conv = <T>(f: () => T): T => {
      try {
        return f();
      } catch (e) {
        throw new UsageError((e as Error).message);
      }
    };
    const b = pick(given.B);
    let bps = 0;
    if (b !== undefined && b !== "0") {
      const bw = conv(() => parseBandwidth(b));
      if (bw.kind !== "constant") throw new UsageError(`-B ${b}: a link has a rate: bps or constant,bps`);
      bps = bw.bps;
    }
    const d = pick(given.D),
      l = pick(given.L),
      q = pick(given.Q);
    return {
      bps,
      delay: d === undefined ? ({ kind: "none" } as Delay) : conv(() => parseDelay(d)),
      loss: l === undefined ? ({ kind: "none" } as Loss) : conv(() => parseLoss(l)),
      queueBytes: q === undefined ? 50000 : intArg("-Q", q, 64, 1 << 30),
    };
  };
  return { a: ifs[0], b: ifs[1], links: [link(0), link(1)], ...r };
}

async function main(): Promise<number> {
  const args = parseCli("tlem", USAGE, parseTlemArgs);
  if (!args) return 0;
  const netmap = existsSync("/dev/netmap");
  const note = (m: string) => D("main", 2290, m);
  const [a, b] = [withSubsystem(args.a, netmap, note), withSubsystem(args.b, netmap, note)];
  let runner: NfRunner;
  let emu: LinkEmulator | null = null;
  try {
    runner = new NfRunner({ [a]: a, [b]: b }, (p) => (emu as LinkEmulator).process(p), {
      reasons: TLEM_REASONS,
      burst: args.burst,
      tick: () => (emu as LinkEmulator).tick(),
      backpressure: false, // a link queues (-Q) and drops past it, as tlem
      kernelTime: true, // a packet's time on the link starts when it arrived, not when tlem woke
    });
    emu = new LinkEmulator(runner, args.links, random(args.seed));
  } catch (e) {
    process.stderr.write(`tlem: ${(e as Error).message}\n`);
    return 1;
  }
  D("main", 2490, `Wait ${args.wait} secs for link up...`);
  if (args.wait) await Bun.sleep(args.wait * 1000);
  D("main", 2495, `Ready, ${a} <-> ${b}`);
  const { counters: c, failed } = await runUntilDone(runner, args.seconds);
  runner.close();
  process.stdout.write(formatCounters(c, args.json));
  return reportFailure("tlem", failed);
}

if (import.meta.main) await runMain("tlem", main);
