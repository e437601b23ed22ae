// bun run nf GRAPH.ts [--stats json|text] [-t seconds] [--processes]: run a graph of network
// functions declared in a TypeScript module (its default export: { ports, nfs, from, split },
// src/nf/graph.ts) on the runner: in this thread, or with `split` one Worker (or process) per part.
// The graph is checked before any port opens; on exit (SIGINT, SIGTERM, -t) the counters per port
// and per NF, as report lines or JSON lines.

import { nfFamilies } from "../../metrics/families.ts";
import { GraphPart, loadGraph } from "../../nf/part.ts";
import type { PartDone } from "../../nf/part-messages.ts";
import { type PartsHandle, startParts } from "../../nf/parts.ts";
import { formatPorts, type PortCounters } from "../../nf/runner.ts";
import { intArg, parseCli, runMain, UsageError } from "../cli.ts";
import { METRICS_USAGE, type MetricsFlag, metricsAddr, startMetrics, takeMetricsFlag } from "../metrics-flag.ts";

export const USAGE = `Usage: bun run nf GRAPH.ts [--stats json|text] [-t seconds] [--processes] [--metrics HOST:PORT]
  GRAPH.ts exports default { ports: { name: "shm:x{0", ... }, nfs: { name: { nf, to: [...], reasons } },
  from: { port: "nf or port" }, split?: [["nf", ...], ...] } (README: "Write a network function")
  --processes   with split: one process per part (default: one Worker per part)
  ${METRICS_USAGE} (a split graph's parts report each second)`;

export interface NfArgs {
  file: string;
  json: boolean;
  seconds: number;
  processes: boolean;
  metrics: MetricsFlag;
}

export function parseNfArgs(argv: string[]): NfArgs | "help" {
  const r: NfArgs = { file: "", json: false, seconds: 0, processes: false, metrics: { raw: "", public: false } };
  for (let i = 0; i < argv.length; i++) {
    const used = takeMetricsFlag(argv, i, r.metrics);
    if (used) {
      i += used - 1;
      continue;
    }
    const a = argv[i];
    if (a === "-h") return "help";
    if (a === "-t") r.seconds = intArg("-t", argv[++i], 0, 86400);
    else if (a === "--processes") r.processes = true;
    else if (a === "--stats") {
      const f = argv[++i];
      if (f !== "json" && f !== "text") throw new UsageError(`--stats ${f ?? ""}: use json or text`);
      r.json = f === "json";
    } else if (!a.startsWith("-") && !r.file) r.file = a;
    else throw new UsageError(`unknown argument ${a}`);
  }
  if (!r.file) throw new UsageError("name the graph's module: bun run nf GRAPH.ts");
  metricsAddr(r.metrics);
  return r;
}

/** Each part's ports, then its NFs: report lines (prefixed "part k: " when there are several) or JSON lines. */
function report(parts: PartDone[], json: boolean): string {
  let out = "";
  for (const d of parts) {
    const pre = parts.length > 1 ? `part ${d.part}: ` : "";
    if (json) {
      const tag = parts.length > 1 ? { part: d.part } : {};
      for (const p of d.ports) out += `${JSON.stringify({ port: p.name, ...tag, ...p })}\n`;
      for (const n of d.nfs) out += `${JSON.stringify({ nf: n.name, ...tag, ...n })}\n`;
      continue;
    }
    for (const line of formatPorts(d.ports as PortCounters[]).split("\n")) if (line) out += `${pre}${line}\n`;
    for (const n of d.nfs) {
      const drops = Object.entries(n.drops)
        .filter(([, v]) => v)
        .map(([r, v]) => `, ${v} dropped (${r})`)
        .join("");
      out += `${pre}nf ${n.name}: ${n.packets} packets, ${n.forwarded} passed on${drops}\n`;
    }
  }
  return out;
}

async function main(): Promise<number> {
  const args = parseCli("nf", USAGE, parseNfArgs);
  if (!args) return 0;
  const fail = (m: string) => {
    process.stderr.write(`nf: ${m}\n`);
    return 1;
  };
  const prefix = (e: unknown) => {
    const m = (e as Error).message;
    return m.startsWith(`${args.file}:`) ? m : `${args.file}: ${m}`;
  };
  try {
    const spec = await loadGraph(args.file);
    const nPorts = Object.keys(spec.ports).length,
      nNfs = Object.keys(spec.nfs).length;
    if (!spec.split) {
      if (args.processes) return fail("--processes needs a graph with split: [[...], ...] (its parts)");
      const part = new GraphPart(spec, 0, "");
      const web = startMetrics(
        metricsAddr(args.metrics),
        {
          sources: [
            () => {
              const c = part.runner.counters();
              return nfFamilies(c.ports, part.graph.counters(c.drops));
            },
          ],
        },
        "nf",
      );
      process.stdout.write(`nf: ${args.file}: ${nPorts} ports, ${nNfs} NFs, running\n`);
      // kept for the process's life: a second ^C must not cut the counters short
      process.on("SIGINT", () => part.stop());
      process.on("SIGTERM", () => part.stop());
      const done = await part.run({ seconds: args.seconds || undefined, signals: false });
      await web?.stop();
      process.stdout.write(report([done], args.json));
      return done.failed ? fail(`stopped: ${done.failed}`) : 0;
    }
    const mode = args.processes ? "processes" : "workers";
    // each part reports its counters each second: a split graph's metrics are that old at most. The
    // address is taken before any part starts (one that cannot be had stops nothing half-started).
    let handle: PartsHandle | null = null;
    const web = startMetrics(
      metricsAddr(args.metrics),
      {
        sources: [() => (handle?.latest() ?? []).flatMap((p) => nfFamilies(p.ports, p.nfs, { part: String(p.part) }))],
      },
      "nf",
    );
    try {
      handle = await startParts(args.file, spec, mode);
    } catch (e) {
      await web?.stop();
      throw e;
    }
    const started = handle;
    process.stdout.write(
      `nf: ${args.file}: ${nPorts} ports, ${nNfs} NFs in ${spec.split.length} parts (${mode}), running\n`,
    );
    const stopped = new Promise<string | null>((res) => {
      const onSignal = () => res(null);
      process.on("SIGINT", onSignal); // kept: a second ^C must not cut the orderly stop short
      process.on("SIGTERM", onSignal);
      if (args.seconds) setTimeout(onSignal, args.seconds * 1000);
      started.failed.then((d) => res(`part ${d.part}: ${d.failed}`));
    });
    const why = await stopped;
    const { parts } = await started.stop();
    await web?.stop();
    process.stdout.write(report(parts, args.json));
    return why ? fail(`stopped: ${why}`) : 0;
  } catch (e) {
    return fail(prefix(e));
  }
}

if (import.meta.main) await runMain("nf", main);
