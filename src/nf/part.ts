// One part of a graph, in the thread or process that runs it: the module imported here (its NFs are
// this thread's own objects), the part's share of the graph compiled, its ports opened, run until
// stopped. The same code under a Worker (part-worker.ts), a process (part-process.ts), or alone.
import { resolve } from "node:path";
import { CompiledGraph, GraphError, type GraphSpec } from "./graph.ts";
import { COUNTERS_MS, type PartCounters, type PartDone } from "./part-messages.ts";
import { NfRunner } from "./runner.ts";
import { splitGraph } from "./split.ts";

/** A graph module's default export, checked for its shape; one sentence if it is not a graph. */
export async function loadGraph(file: string): Promise<GraphSpec> {
  let spec: GraphSpec;
  try {
    spec = (await import(resolve(file))).default;
  } catch (e) {
    throw new GraphError(`${file}: ${(e as Error).message.split("\n")[0]} (fix the module, or check its path)`);
  }
  if (!spec || typeof spec !== "object" || typeof spec.ports !== "object" || typeof spec.nfs !== "object")
    throw new GraphError(`${file}: its default export must be a graph { ports, nfs, from }`);
  return spec;
}

export class GraphPart {
  readonly spec: GraphSpec;
  readonly graph: CompiledGraph;
  readonly runner: NfRunner;

  /** Part `part` of the split (the whole graph when it has no split); opens its ports. */
  constructor(
    whole: GraphSpec,
    readonly part: number,
    id: string,
  ) {
    const parts = splitGraph(whole, id);
    if (part < 0 || part >= parts.length) throw new GraphError(`the graph has no part ${part}`);
    this.spec = parts[part];
    this.graph = new CompiledGraph(this.spec);
    this.runner = new NfRunner(this.spec.ports, this.graph.process, { reasons: this.graph.reasons });
  }

  /** Run until stop() or `seconds`; the counters, and what stopped it if a port failed. Closes. */
  async run(opts: { seconds?: number; signals?: boolean } = {}): Promise<PartDone> {
    let failed: string | null = null;
    try {
      await this.runner.run(opts);
    } catch (e) {
      failed = (e as Error).message;
    }
    const c = this.runner.counters();
    this.runner.close();
    return { t: "done", part: this.part, ports: c.ports, nfs: this.graph.counters(c.drops), failed };
  }

  /** Its counters now, while it runs (the report a split graph's parent gathers each second). */
  counters(): PartCounters {
    const c = this.runner.counters();
    return { t: "counters", part: this.part, ports: c.ports, nfs: this.graph.counters(c.drops) };
  }

  /** Report counters every COUNTERS_MS until the part stops (the timer does not hold the thread open). */
  reportEvery(say: (m: PartCounters) => void): () => void {
    const t = setInterval(() => say(this.counters()), COUNTERS_MS);
    t.unref?.();
    return () => clearInterval(t);
  }

  /** Stop once what is queued on its ports is through (the parts before it have stopped). */
  stop(): void {
    this.runner.stop(true);
  }
}
