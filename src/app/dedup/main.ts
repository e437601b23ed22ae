// bun run dedup -i IN -i OUT [-W window_us] [-F fifo] [-w wait_s] [-t seconds]: netmap's dedup on
// bunmap ports, as a network function on the runner (src/nf/dedup.ts): packets from IN go to OUT,
// except one identical to a packet forwarded less than the window ago among the last FIFO ones.
import { DEDUP_REASONS, Dedup } from "../../nf/dedup.ts";
import { drop, formatCounters, NfRunner, reportFailure, runUntilDone } from "../../nf/runner.ts";
import { ArgvReader, intArg, parseCli, runMain, UsageError } from "../cli.ts";
import { D } from "../report.ts";

export interface DedupArgs {
  input: string;
  output: string;
  windowUs: number;
  fifo: number;
  wait: number;
  seconds: number;
  json: boolean;
}

export const USAGE = `Usage: bun run dedup -i IN -i OUT [-W window_us(50)] [-F fifo_size(10)] [-w wait_s(2)] [-t seconds] [--stats json]
  packets from IN go to OUT; one identical (length and bytes) to a packet forwarded less than
  window_us ago, among the last fifo_size forwarded, is dropped (netmap's dedup). On exit (SIGINT,
  SIGTERM, -t) the counters: per port, and the duplicates dropped.`;

export function parseDedupArgs(argv: string[]): DedupArgs | "help" {
  const ports: string[] = [];
  const r: DedupArgs = { input: "", output: "", windowUs: 50, fifo: 10, wait: 2, seconds: 0, json: false };
  const args = new ArgvReader(argv);
  for (let a = args.next(); a !== undefined; a = args.next()) {
    const v = () => args.value();
    switch (a) {
      case "-h":
        return "help";
      case "-i":
        ports.push(v());
        break;
      case "-W":
        r.windowUs = intArg("-W", v(), 1, 60_000_000);
        break;
      case "-F":
        r.fifo = intArg("-F", v(), 1, 65536);
        break;
      case "-w":
        r.wait = intArg("-w", v(), 0, 100);
        break;
      case "-t":
        r.seconds = intArg("-t", v(), 0, 86400);
        break;
      case "--stats": {
        const f = v();
        if (f !== "json" && f !== "text") throw new UsageError(`--stats ${f}: use json or text`);
        r.json = f === "json";
        break;
      }
      default:
        throw new UsageError(`unknown option ${a}`);
    }
  }
  if (ports.length !== 2) throw new UsageError("need two ports: -i IN -i OUT");
  if (ports[0] === ports[1]) throw new UsageError("the two ports must differ");
  [r.input, r.output] = ports;
  return r;
}

async function main(): Promise<number> {
  const args = parseCli("dedup", USAGE, parseDedupArgs);
  if (!args) return 0;
  const dedup = new Dedup(1, { fifo: args.fifo, windowUs: args.windowUs });
  let runner: NfRunner;
  try {
    // IN -> OUT only: what arrives on OUT is not passed back (counted as such)
    runner = new NfRunner(
      { [args.input]: args.input, [args.output]: args.output },
      (p) => (p.input === 0 ? dedup.process(p) : drop(1)),
      { reasons: [...DEDUP_REASONS, "arrived on the output port"] },
    );
  } catch (e) {
    process.stderr.write(`dedup: ${(e as Error).message}\n`);
    return 1;
  }
  D("main", 180, `Wait ${args.wait} secs for link to come up...`);
  if (args.wait) await Bun.sleep(args.wait * 1000);
  D("main", 182, `Ready to go, ${args.input} -> ${args.output}`);
  const { counters: c, failed } = await runUntilDone(runner, args.seconds);
  runner.close();
  process.stdout.write(formatCounters(c, args.json));
  return reportFailure("dedup", failed);
}

if (import.meta.main) await runMain("dedup", main);
