// A switch worker: opens its ring of every port (ring w of each port when there are several
// workers), shares the fdb, runs SwitchCore rounds until told to stop. Counters go to shared memory.
import { openPort } from "../../port/open.ts";
import type { Port } from "../../port/port.ts";
import { POLLIN } from "../../ring/layout.ts";
import { Fdb } from "./fdb.ts";
import { loadLookup } from "./lookup.ts";
import { SwitchCore } from "./core.ts";

declare const self: Worker;

export interface WorkerInit {
  specs: string[]; w: number; workers: number; burst: number; lookup: string | null; age: number; fdb: SharedArrayBuffer; ctr: SharedArrayBuffer;
  /** Optional per-port counters (2 f64 per port: rx, tx), summed over workers by the owner. */
  portCtr?: SharedArrayBuffer;
}

/** The name worker w opens: ring w of the port when there are several workers. */
export function ringSpec(spec: string, w: number, workers: number): string {
  if (workers === 1) return spec;
  const at = spec.search(/@(?![0-9])/);
  return at < 0 ? `${spec}-${w}` : `${spec.slice(0, at)}-${w}${spec.slice(at)}`;
}

self.onmessage = async (ev: MessageEvent<WorkerInit>) => {
  const m = ev.data;
  const ports: Port[] = [];
  try {
    for (const s of m.specs) ports.push(openPort(ringSpec(s, m.w, m.workers)));
    const pc = m.portCtr ? new Float64Array(m.portCtr, m.w * 16 * m.specs.length, 2 * m.specs.length) : undefined;
    const core = new SwitchCore(ports, Fdb.of(m.fdb, m.age), await loadLookup(m.lookup), m.burst, pc);
    const ctl = new Int32Array(m.ctr, 0, 4); // [stop, ready]
    const ctr = new Float64Array(m.ctr, 16 + m.w * 32, 4); // forwarded, flooded, dropped, rounds
    Atomics.add(ctl, 1, 1);
    self.postMessage({ ready: true });
    let idle = 0;
    while (Atomics.load(ctl, 0) === 0) {
      const got = core.round();
      ctr[0] = core.c.forwarded; ctr[1] = core.c.flooded; ctr[2] = core.c.dropped; ctr[3]++;
      if (got) { idle = 0; continue; }
      // idle: spin a little, then sleep on the first port (others are picked up on the next round)
      if (++idle > 256) ports[0].poll(POLLIN, 1);
    }
    for (const p of ports) p.close();
    self.postMessage({ done: true });
  } catch (e) {
    for (const p of ports) p.close();
    self.postMessage({ error: (e as Error).message });
  }
};
