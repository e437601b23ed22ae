// bun run switch -i PORT [-i PORT ...] [-p workers] [-b burst] [--lookup file.ts] [--age s] [-T ms] [-t s]
// A VALE-style learning switch over any ports of any backend: the library's switch engine (ring w of
// every port belongs to worker w); the main thread only reports.

import { switchFamilies } from "../../metrics/families.ts";
import type { MetricsRoutes } from "../../metrics/http.ts";
import { parsePortName } from "../../port/open.ts";
import { SwitchEngine, type SwitchHandle } from "../../switch/engine.ts";
import { intArg, parseCli, runMain, UsageError } from "../cli.ts";
import { METRICS_USAGE, type MetricsFlag, metricsAddr, startMetrics, takeMetricsFlag } from "../metrics-flag.ts";
import { D, norm } from "../report.ts";

export interface SwitchArgs {
  ports: string[];
  workers: number;
  burst: number;
  lookup: string | null;
  age: number;
  reportMs: number;
  seconds: number;
  kernelFastPath: boolean;
  metrics: MetricsFlag;
}

export const USAGE = `Usage: bun run switch -i PORT [-i PORT ...] [-p workers(1)] [-b burst(512)] [--lookup file.ts] [--age seconds(300)] [-T report_ms(1000)] [-t seconds] [-K] [--metrics HOST:PORT [--metrics-public]]
  PORT may hold a range: 'shm:sw{[0-255]' is 256 ports. With -p N every port needs N rings (shm: @conf:rings=N).
  --lookup: a module whose default export is (u8, off, len, srcPort, sw) => port | -1 (broadcast) | -2 (drop).
  -K: the kernel forwards known unicast between packet: ports (tc redirect; one worker, learning lookup).
  ${METRICS_USAGE}`;

/** Expand one [a-b] range in a port name. */
export function expandPorts(spec: string): string[] {
  const m = /\[(\d+)-(\d+)\]/.exec(spec);
  if (!m) return [spec];
  const a = Number(m[1]),
    b = Number(m[2]);
  if (b < a || b - a > 4095) throw new UsageError(`${spec}: range [${a}-${b}] must go up, at most 4096 ports`);
  return Array.from({ length: b - a + 1 }, (_, i) => spec.replace(m[0], String(a + i)));
}

export function parseSwitchArgs(argv: string[]): SwitchArgs | "help" {
  const r: SwitchArgs = {
    ports: [],
    workers: 1,
    burst: 512,
    lookup: null,
    age: 300,
    reportMs: 1000,
    seconds: 0,
    kernelFastPath: false,
    metrics: { raw: "", public: false },
  };
  const num = intArg;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const used = takeMetricsFlag(argv, i, r.metrics);
    if (used) {
      i += used - 1;
      continue;
    }
    switch (a) {
      case "-h":
      case "--help":
        return "help";
      case "-i":
        if (argv[i + 1] === undefined) throw new UsageError("-i needs a port");
        r.ports.push(...expandPorts(argv[++i]));
        break;
      case "-p":
        r.workers = num(a, argv[++i], 1, 64);
        break;
      case "-b":
        r.burst = num(a, argv[++i], 1, 8192);
        break;
      case "--age":
        r.age = num(a, argv[++i], 0, 86400);
        break;
      case "-T":
        r.reportMs = num(a, argv[++i], 10, 3_600_000);
        break;
      case "-t":
        r.seconds = num(a, argv[++i], 0, 86400);
        break;
      case "--lookup":
        if (!argv[i + 1]) throw new UsageError("--lookup needs a file");
        r.lookup = argv[++i];
        break;
      case "-K":
        r.kernelFastPath = true;
        break;
      default:
        throw new UsageError(`unknown argument '${a}'`);
    }
  }
  if (r.ports.length < 2) throw new UsageError("a switch needs at least two ports (-i PORT -i PORT)");
  if (new Set(r.ports).size !== r.ports.length) throw new UsageError("the same port is given twice");
  if (r.kernelFastPath && (r.workers > 1 || r.lookup))
    throw new UsageError("-K needs one worker and the learning lookup");
  for (const p of r.ports) parsePortName(p); // a bad name fails before anything opens
  metricsAddr(r.metrics);
  return r;
}

/** The switch's metrics and learning table for --metrics (ports labelled by the names they were given). */
function switchRoutes(sw: SwitchHandle): MetricsRoutes {
  const names = () => new Map(sw.ports().map((p) => [p.id, p.name]));
  return {
    sources: [
      () =>
        switchFamilies([
          {
            labels: { switch: "switch" },
            counters: sw.stats(),
            stations: sw.fdb.count(Math.floor(Date.now() / 1000)),
            kernelStations: sw.kernelStations(),
            ports: sw.ports().map((p) => ({
              labels: { switch: "switch", port: p.name },
              counters: sw.portStats(p.id),
              fast: sw.kernelCounts(p.id),
            })),
          },
        ]),
    ],
    state: () => {
      const n = names();
      return {
        switches: [
          {
            switch: "switch",
            networks: [],
            stations: sw.stations().map((s) => ({ ...s, port: n.get(s.port) ?? String(s.port) })),
          },
        ],
      };
    },
  };
}

async function main(): Promise<number> {
  const args = parseCli("switch", USAGE, parseSwitchArgs);
  if (!args) return 0;
  const engine = new SwitchEngine({ workers: args.workers });
  let sw: SwitchHandle;
  try {
    sw = await engine.createSwitch({
      rings: args.workers,
      maxPorts: args.ports.length,
      fdbLog2: 16,
      age: args.age,
      lookup: args.lookup,
      burst: args.burst,
      kernelFastPath: args.kernelFastPath,
    });
    for (const p of args.ports) await sw.addPort(p);
  } catch (e) {
    await engine.close();
    process.stderr.write(`switch: ${(e as Error).message}\n`);
    return 1;
  }
  sw.onPortFailed = (_id, name, error) => process.stderr.write(`switch: ${name} left the switch: ${error}\n`);
  let web: { stop(): Promise<void> } | null = null;
  try {
    web = startMetrics(metricsAddr(args.metrics), switchRoutes(sw), "switch");
  } catch (e) {
    await engine.close();
    process.stderr.write(`switch: ${(e as Error).message}\n`);
    return 1;
  }
  process.stdout.write(
    `switch: ${args.ports.length} ports, ${args.workers} worker${args.workers > 1 ? "s" : ""}, lookup ${args.lookup ?? "learning (VALE)"}\n`,
  );
  let stop = false;
  process.on("SIGINT", () => {
    stop = true;
  });
  process.on("SIGTERM", () => {
    stop = true;
  });
  const end = args.seconds ? performance.now() + args.seconds * 1000 : Infinity;
  let last = performance.now(),
    prev = sw.stats();
  while (!stop && performance.now() < end) {
    await Bun.sleep(Math.min(50, args.reportMs));
    const now = performance.now();
    if (now - last < args.reportMs) continue;
    const s = (now - last) / 1000,
      c = sw.stats();
    D(
      "switch",
      1,
      `${norm((c.forwarded - prev.forwarded) / s, true)}pps forwarded ${norm((c.flooded - prev.flooded) / s, true)}pps flooded ${norm((c.dropped - prev.dropped) / s, true)}pps dropped, ${sw.fdb.count(Math.floor(Date.now() / 1000))} fdb entries`,
    );
    last = now;
    prev = c;
  }
  const c = sw.stats();
  await web?.stop();
  await engine.close();
  process.stdout.write(`switch: forwarded ${c.forwarded} flooded ${c.flooded} dropped ${c.dropped}\n`);
  return 0;
}

if (import.meta.main) await runMain("switch", main);
