// A split graph's parent: starts one Worker (or one process) per part, in split's order, each once
// the one before has its ports open (so a region's first opener is always the same one, and a part
// that cannot start stops the others before anything runs); stops them in the same order, each after
// the one before has finished, so what an upstream part released is delivered downstream; gathers
// their counters.
import { Value } from "@sinclair/typebox/value";
import { GraphError, type GraphSpec } from "./graph.ts";
import {
  type PartCommand,
  type PartCounters,
  type PartDone,
  type PartReport,
  PartReportSchema,
} from "./part-messages.ts";
import { splitGraph } from "./split.ts";

export type PartsMode = "workers" | "processes";

interface Running {
  /** Ask it to stop; the promise is its counters. */
  stop(): void;
  done: Promise<PartDone>;
  kill(): void;
}

/** Messages from one part, as a queue the parent awaits. */
class Inbox {
  private readonly queue: PartReport[] = [];
  private waiter: ((m: PartReport) => void) | null = null;
  put(m: PartReport): void {
    if (this.waiter) {
      const w = this.waiter;
      this.waiter = null;
      w(m);
    } else this.queue.push(m);
  }
  next(): Promise<PartReport> {
    const m = this.queue.shift();
    return m ? Promise.resolve(m) : new Promise((r) => (this.waiter = r));
  }
}

function startWorker(file: string, part: number, id: string, inbox: Inbox): Omit<Running, "done"> {
  const w = new Worker(new URL("./part-worker.ts", import.meta.url).href);
  w.onmessage = (ev: MessageEvent<PartReport>) => inbox.put(ev.data);
  w.onerror = (ev) => inbox.put({ t: "error", part, message: `worker failed: ${ev.message}` });
  w.postMessage({ t: "start", file, part, id } satisfies PartCommand);
  return {
    stop: () => w.postMessage({ t: "stop" } satisfies PartCommand),
    kill: () => w.terminate(),
  };
}

function startProcess(file: string, part: number, id: string, inbox: Inbox): Omit<Running, "done"> {
  const child = Bun.spawn(
    [process.execPath, new URL("./part-process.ts", import.meta.url).pathname, file, `${part}`, id],
    {
      stdout: "pipe",
      stderr: "inherit",
    },
  );
  (async () => {
    let buf = "";
    const dec = new TextDecoder();
    for await (const chunk of child.stdout) {
      buf += dec.decode(chunk);
      for (let nl = buf.indexOf("\n"); nl >= 0; nl = buf.indexOf("\n")) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        let m: unknown;
        try {
          m = JSON.parse(line);
        } catch {
          m = null;
        }
        inbox.put(
          Value.Check(PartReportSchema, m)
            ? m
            : { t: "error", part, message: `part ${part} printed something not a report: ${line.slice(0, 80)}` },
        );
      }
    }
    const code = await child.exited;
    inbox.put({ t: "error", part, message: `part ${part}'s process ended (status ${code}) without its counters` });
  })();
  return { stop: () => child.kill("SIGTERM"), kill: () => child.kill("SIGKILL") };
}

/** Counters of every part, in split's order. */
export interface PartsResult {
  parts: PartDone[];
}

export interface PartsHandle {
  /** Stop every part (in order); resolves with their counters. */
  stop(): Promise<PartsResult>;
  /** Resolves when a part stopped by itself (a port failed): its report. */
  failed: Promise<PartDone>;
  /** Each part's latest counters (reported each second while it runs), in split's order. */
  latest(): PartCounters[];
}

/**
 * Start every part of the graph in `file` (its default export `spec`, already loaded: its split is
 * checked here before anything starts). Throws GraphError, everything started stopped again, when a
 * part cannot start.
 */
export async function startParts(file: string, spec: GraphSpec, mode: PartsMode): Promise<PartsHandle> {
  const id = `${process.pid}-${Date.now().toString(36)}`;
  const n = splitGraph(spec, id).length;
  const running: Running[] = [];
  const latest: PartCounters[] = [];
  let onFailed: (d: PartDone) => void = () => {};
  const failed = new Promise<PartDone>((r) => (onFailed = r));
  let stopping = false;
  for (let k = 0; k < n; k++) {
    const inbox = new Inbox();
    const r = (mode === "workers" ? startWorker : startProcess)(file, k, id, inbox);
    const first = await inbox.next();
    if (first.t !== "ready") {
      r.kill();
      for (const s of running) s.stop();
      await Promise.all(running.map((s) => s.done));
      throw new GraphError(`part ${k}: ${first.t === "error" ? first.message : "stopped before it started"}`);
    }
    const done = (async (): Promise<PartDone> => {
      for (;;) {
        const m = await inbox.next();
        if (m.t === "counters") {
          latest[k] = m;
          continue;
        }
        if (m.t === "done") {
          latest[k] = { ...m, t: "counters" };
          if (!stopping && m.failed) onFailed(m);
          r.kill();
          return m;
        }
        if (m.t === "error") {
          const d: PartDone = { t: "done", part: k, ports: [], nfs: [], failed: m.message };
          if (!stopping) onFailed(d);
          return d;
        }
      }
    })();
    running.push({ ...r, done });
  }
  return {
    failed,
    latest: () => latest.filter(Boolean),
    async stop() {
      stopping = true;
      const parts: PartDone[] = [];
      for (const r of running) {
        r.stop();
        parts.push(await r.done);
      }
      return { parts };
    },
  };
}
