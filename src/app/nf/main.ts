// bun run nf GRAPH.ts [--stats json|text] [-t seconds]: run a graph of network functions declared in
// a TypeScript module (its default export: { ports, nfs, from }, src/nf/graph.ts) on the runner.
// The graph is checked before any port opens; on exit (SIGINT, SIGTERM, -t) the counters per port
// and per NF, as report lines or JSON lines.
import { resolve } from "node:path";
import { CompiledGraph, type GraphSpec } from "../../nf/graph.ts";
import { formatPorts, NfRunner, reportFailure, runUntilDone } from "../../nf/runner.ts";
import { intArg, parseCli, runMain, UsageError } from "../cli.ts";

export const USAGE = `Usage: bun run nf GRAPH.ts [--stats json|text] [-t seconds]
  GRAPH.ts exports default { ports: { name: "shm:x{0", ... }, nfs: { name: { nf, to: [...], reasons } },
  from: { port: "nf or port" } } (README: "Write a network function")`;

export interface NfArgs {
  file: string;
  json: boolean;
  seconds: number;
}

export function parseNfArgs(argv: string[]): NfArgs | "help" {
  const r: NfArgs = { file: "", json: false, seconds: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "-h") return "help";
    if (a === "-t") r.seconds = intArg("-t", argv[++i], 0, 86400);
    else if (a === "--stats") {
      const f = argv[++i];
      if (f !== "json" && f !== "text") throw new UsageError(`--stats ${f ?? ""}: use json or text`);
      r.json = f === "json";
    } else if (!a.startsWith("-") && !r.file) r.file = a;
    else throw new UsageError(`unknown argument ${a}`);
  }
  if (!r.file) throw new UsageError("name the graph's module: bun run nf GRAPH.ts");
  return r;
}

async function main(): Promise<number> {
  const args = parseCli("nf", USAGE, parseNfArgs);
  if (!args) return 0;
  const fail = (m: string) => {
    process.stderr.write(`nf: ${m}\n`);
    return 1;
  };
  let spec: GraphSpec;
  try {
    spec = (await import(resolve(args.file))).default;
  } catch (e) {
    return fail(`${args.file}: ${(e as Error).message.split("\n")[0]} (fix the module, or check its path)`);
  }
  if (!spec || typeof spec !== "object" || typeof spec.ports !== "object" || typeof spec.nfs !== "object")
    return fail(`${args.file}: its default export must be a graph { ports, nfs, from }`);
  let graph: CompiledGraph;
  let runner: NfRunner;
  try {
    graph = new CompiledGraph(spec);
    runner = new NfRunner(spec.ports, graph.process, { reasons: graph.reasons });
  } catch (e) {
    return fail(`${args.file}: ${(e as Error).message}`);
  }
  process.stdout.write(
    `nf: ${args.file}: ${Object.keys(spec.ports).length} ports, ${Object.keys(spec.nfs).length} NFs, running\n`,
  );
  const { counters: c, failed } = await runUntilDone(runner, args.seconds);
  runner.close();
  const nfs = graph.counters(c.drops);
  if (args.json) {
    process.stdout.write(formatPorts(c.ports, true));
    for (const n of nfs) process.stdout.write(`${JSON.stringify({ nf: n.name, ...n })}\n`);
  } else {
    process.stdout.write(formatPorts(c.ports));
    for (const n of nfs) {
      const d = Object.entries(n.drops)
        .filter(([, v]) => v)
        .map(([r, v]) => `, ${v} dropped (${r})`)
        .join("");
      process.stdout.write(`nf ${n.name}: ${n.packets} packets, ${n.forwarded} passed on${d}\n`);
    }
  }
  return reportFailure("nf", failed);
}

if (import.meta.main) await runMain("nf", main);
