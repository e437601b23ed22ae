// A profile on several threads (bun run pktgen --profile -p N): stream i is sent by Worker i mod N,
// each Worker on its own ring (its port name given), started one after another once the one before
// has its port open; this thread receives (when there is a port to receive on), relays the Workers'
// per-second counts, and merges their streams' counts by id at the end.
import type { Port } from "../port/port.ts";
import type { GenCommand, GenReport, StreamTxData } from "./gen-messages.ts";
import type { StreamTx } from "./generator.ts";
import { Histogram } from "./histogram.ts";
import type { CompiledStream } from "./profile.ts";
import { drainPort, Receiver } from "./receiver.ts";

export interface ThreadsOptions {
  count: number;
  seconds: number;
  totalPps?: number;
  burst: number;
  /** About once a second: packets sent so far by stream id, and the receiver. */
  onSecond?: (sent: number[], rx: Receiver | null) => void;
}

export interface ThreadsRun {
  /** Resolves with the merged counts once every Worker is done. */
  done: Promise<{ startMs: number; endMs: number; tx: StreamTx[]; rx: Receiver | null }>;
  stop(): void;
}

const toTx = (d: StreamTxData): StreamTx => {
  const h = new Histogram();
  h.counts.set(d.lateness.counts);
  Object.assign(h, { count: d.lateness.count, min: d.lateness.min, max: d.lateness.max, sum: d.lateness.sum });
  return {
    name: d.name,
    sent: d.sent,
    bytes: d.bytes,
    behind: d.behind,
    perSecond: d.perSecond,
    lateness: h,
  };
};

/** Start the Workers (throws, the started ones stopped, when one cannot open its port or profile). */
export async function runThreads(
  file: string,
  streams: CompiledStream[],
  ports: string[],
  rxPort: Port | null,
  o: ThreadsOptions,
): Promise<ThreadsRun> {
  const workers: Worker[] = [];
  const finished: Promise<Extract<GenReport, { t: "done" }>>[] = [];
  const sent = new Array<number>(streams.length).fill(0);
  const rx = rxPort ? new Receiver(streams.map((s) => s.writer.template.sigOff)) : null;
  const stopAll = () => {
    for (const w of workers) w.postMessage({ t: "stop" } satisfies GenCommand);
  };
  for (let k = 0; k < ports.length; k++) {
    const ids = streams.map((_, i) => i).filter((i) => i % ports.length === k);
    if (!ids.length) break;
    const w = new Worker(new URL("./gen-worker.ts", import.meta.url).href);
    workers.push(w);
    let ready: (m: GenReport) => void = () => {};
    const first = new Promise<GenReport>((r) => (ready = r));
    finished.push(
      new Promise((resolve) => {
        w.onmessage = (ev: MessageEvent<GenReport>) => {
          const m = ev.data;
          if (m.t === "second") for (const [id, n] of m.sent) sent[id] = n;
          else if (m.t === "done") {
            resolve(m);
            w.terminate();
          } else ready(m);
        };
        w.onerror = (ev) => ready({ t: "error", message: ev.message });
      }),
    );
    w.postMessage({
      t: "start",
      file,
      ids,
      port: ports[k],
      count: o.count,
      seconds: o.seconds,
      totalPps: o.totalPps,
      burst: o.burst,
    } satisfies GenCommand);
    const m = await first;
    if (m.t === "error") {
      w.terminate();
      workers.pop();
      stopAll();
      await Promise.all(finished.slice(0, -1));
      throw new Error(`thread ${k} (${ports[k]}): ${m.message}`);
    }
  }
  let allDone = false;
  const done = (async () => {
    const waiting = Promise.all(finished).then((r) => {
      allDone = true;
      return r;
    });
    let nextSecond = performance.now() + 1000;
    while (!allDone) {
      if (rxPort && rx) {
        rxPort.poll(1, 1);
        drainPort(rxPort, rx);
      }
      if (performance.now() >= nextSecond) {
        o.onSecond?.(sent, rx);
        nextSecond += 1000;
      }
      await Bun.sleep(rxPort ? 0 : 10);
    }
    const reports = await waiting;
    // the last of it reaches the receiver
    for (const until = performance.now() + 200; rxPort && rx && performance.now() < until; ) {
      drainPort(rxPort, rx);
      await Bun.sleep(1);
    }
    const tx: StreamTx[] = new Array(streams.length);
    for (const r of reports) for (const d of r.streams) tx[d.id] = toTx(d);
    return {
      startMs: Math.min(...reports.map((r) => r.startMs)),
      endMs: Math.max(...reports.map((r) => r.endMs)),
      tx,
      rx,
    };
  })();
  return { done, stop: stopAll };
}
