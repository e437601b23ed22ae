// One switch per Docker network. With /dev/netmap: kernel VALE (host veth ends attached with the
// emulated adapter forced). Without: bunmap's learning switch in a Worker over the host veth ends
// opened as packet: (or xdp:) ports. A change of membership restarts the Worker on the new port set;
// the learning table (shared memory) carries over.
import { existsSync } from "node:fs";
import { Fdb } from "../src/app/switch/fdb.ts";
import { DevNetmapCtl, setAdmode, type Ctl } from "../src/port/netmap-ctl.ts";
import { run as valeRun } from "../src/app/vale-ctl/requests.ts";

export type Backend = "packet" | "xdp" | "vale";

export interface Datapath {
  readonly kind: Backend;
  /** Make the switch carry exactly these host interfaces. */
  setPorts(ifnames: string[]): Promise<void>;
  /** Packets per port; null where the datapath keeps none we can read (kernel VALE). */
  counters(): { port: string; rx: number | null; tx: number | null }[];
  stop(): Promise<void>;
}

export function netmapAvailable(): boolean {
  return existsSync("/dev/netmap");
}

/** bunmap's own switch in a Worker. */
export class WorkerSwitch implements Datapath {
  private worker: Worker | null = null;
  private ctr: SharedArrayBuffer | null = null;
  private portCtr: SharedArrayBuffer | null = null;
  private ports: string[] = [];
  private readonly fdb = new Fdb(14, 300);
  private base: Float64Array = new Float64Array(0); // counters of earlier workers, per port name
  private baseNames: string[] = [];

  constructor(readonly kind: "packet" | "xdp", private readonly name: string) {}

  async setPorts(ifnames: string[]): Promise<void> {
    const carried = new Map<string, [number, number]>();
    for (const c of this.counters()) carried.set(c.port, [c.rx, c.tx]);
    await this.stop();
    this.ports = [...ifnames];
    this.baseNames = [...ifnames];
    this.base = Float64Array.from(ifnames.flatMap((n) => carried.get(n) ?? [0, 0]));
    if (ifnames.length < 2) return; // nothing to switch yet
    this.ctr = new SharedArrayBuffer(16 + 32);
    this.portCtr = new SharedArrayBuffer(16 * ifnames.length);
    const w = new Worker(new URL("../src/app/switch/worker.ts", import.meta.url).href);
    this.worker = w;
    await new Promise<void>((resolve, reject) => {
      w.onmessage = (ev) => { if (ev.data.ready) resolve(); if (ev.data.error) reject(new Error(`switch ${this.name}: ${ev.data.error}`)); };
      w.onerror = (ev) => reject(new Error(`switch ${this.name}: ${(ev as ErrorEvent).message}`));
      w.postMessage({ specs: ifnames.map((n) => `${this.kind}:${n}`), w: 0, workers: 1, burst: 256, lookup: null, age: 300, fdb: this.fdb.sab, ctr: this.ctr, portCtr: this.portCtr });
    }).catch(async (e) => { w.terminate(); this.worker = null; throw e; });
  }

  counters(): { port: string; rx: number; tx: number }[] {
    const live = this.portCtr ? new Float64Array(this.portCtr) : null;
    return this.baseNames.map((port, i) => ({
      port,
      rx: this.base[2 * i] + (live && this.worker ? live[2 * i] : 0),
      tx: this.base[2 * i + 1] + (live && this.worker ? live[2 * i + 1] : 0),
    }));
  }

  async stop(): Promise<void> {
    const w = this.worker;
    if (!w || !this.ctr) return;
    const done = new Promise<void>((r) => { w.onmessage = (ev) => { if (ev.data.done || ev.data.error) r(); }; });
    Atomics.store(new Int32Array(this.ctr, 0, 4), 0, 1);
    await Promise.race([done, Bun.sleep(2000)]);
    // fold this worker's counts into the base before it goes
    const live = new Float64Array(this.portCtr!);
    for (let i = 0; i < this.baseNames.length; i++) { this.base[2 * i] += live[2 * i]; this.base[2 * i + 1] += live[2 * i + 1]; }
    w.terminate();
    this.worker = null;
    this.portCtr = null;
  }
}

/** Kernel VALE: attach host veth ends to vale<name> (emulated adapter: containers use the kernel stack). */
export class ValeSwitch implements Datapath {
  readonly kind = "vale" as const;
  private attached = new Set<string>();
  /** @param ctl where NIOCCTRL requests go (/dev/netmap by default); @param sysRoot for the admode parameter */
  constructor(private readonly sw: string, private readonly ctl: Ctl & { close?(): void } = new DevNetmapCtl(), sysRoot = "/sys") {
    // containers keep the kernel stack on their veth end: netmap must use the emulated adapter
    setAdmode("generic", sysRoot);
  }
  async setPorts(ifnames: string[]): Promise<void> {
    for (const n of ifnames) if (!this.attached.has(n)) { valeRun(this.ctl, { op: "attach", name: `${this.sw}:${n}`, hostStack: false, conf: [0, 0, 0, 0], memId: 0 }); this.attached.add(n); }
    for (const n of [...this.attached]) if (!ifnames.includes(n)) { valeRun(this.ctl, { op: "detach", name: `${this.sw}:${n}` }); this.attached.delete(n); }
  }
  counters() { return [...this.attached].map((port) => ({ port, rx: null, tx: null })); } // VALE counts in the kernel, unexposed
  async stop(): Promise<void> { await this.setPorts([]); this.ctl.close?.(); }
}

export function makeDatapath(kind: Backend, name: string): Datapath {
  if (kind === "vale") return new ValeSwitch(name);
  return new WorkerSwitch(kind, name);
}
