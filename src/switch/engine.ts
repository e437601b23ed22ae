// The switch engine: a small pool of worker threads (at most one per core, started as needed) that
// hosts every switch, as one VALE module hosts every bridge. The caller holds a SwitchHandle per
// switch: add and remove ports while it runs, read its counters. A switch lives on one worker, or,
// with rings = N, on N workers, worker r opening ring r of every port (they share one learning table).
import { availableParallelism } from "node:os";
import * as libc from "../../ffi/libc.ts";
import { allowedCpus } from "../os/cpu.ts";
import { parseMac } from "../packet/ethernet.ts";
import { Fdb } from "../packet/fdb.ts";
import { ringName } from "../port/name.ts";
import {
  closeFastPath,
  createFastPath,
  type FastPathFds,
  type KernelCounts,
  kernelPortCounts,
  kernelStations,
} from "./fastpath.ts";
import {
  addCounters,
  counterBlock,
  MAX_PORTS,
  PORT_CTR,
  type PortCounters,
  portId,
  SW_CTR,
  type SwitchCounters,
  slotOf,
  zeroCounters,
} from "./layout.ts";

export type { PortCounters, SwitchCounters };

import { type Command, CTL, type Reply, type WorkerInit } from "./messages.ts";

export interface EngineOptions {
  /** Worker threads at most (default: the cores). */
  workers?: number;
  /** Busy-poll window before an idle worker sleeps, µs (default BUNMAP_SPIN_US or 50). */
  spinUs?: number;
  /**
   * Pin worker i to CPU i of those this process may use (default false; BUNMAP_PIN=1: true). Measured
   * on 2 vCPUs shared with containers (bench/RESULTS.md): unpinned forwards small packets faster, as
   * the scheduler can move the worker off a core the containers are using.
   */
  pin?: boolean;
}

export interface SwitchOptions {
  /** Workers sharing the switch, one ring of every port each (every port then needs that many rings). */
  rings?: number;
  maxPorts?: number;
  /** Learning table size, log2 entries (default 12: 4096 stations). */
  fdbLog2?: number;
  /** Seconds a learned station is kept without traffic. */
  age?: number;
  /** A lookup module (default: VALE's learning lookup). */
  lookup?: string | null;
  /** Learn source MACs (default). false: a lookup-only switch (a custom lookup routes by other
   * fields, and no table is written per packet); the learning lookup then floods everything. */
  learn?: boolean;
  burst?: number;
  /**
   * Known unicast between AF_PACKET ports forwarded by the kernel (tc redirect in the sender's
   * softirq, fastpath.ts); the switch learns, floods and serves other ports. Needs rings = 1 and the
   * learning lookup; such frames do not show in the port counters.
   */
  kernelFastPath?: boolean;
}

type Cmd = Command extends infer C ? (C extends { seq: number } ? Omit<C, "seq"> : never) : never;

class EngineWorker {
  readonly worker: Worker;
  readonly doorbell: number;
  private readonly ctl = new Int32Array(new SharedArrayBuffer(4 * CTL.size));
  private seq = 0;
  private readonly waiting = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  private dead: Error | null = null;
  readonly ready: Promise<void>;
  /** Ports and switches placed here (placement picks the least loaded worker). */
  ports = 0;
  switches = 0;

  /** @param cpu the CPU to pin the worker to, or -1 */
  constructor(
    spinUs: number,
    cpu: number,
    private readonly onPortFailed: (sw: number, id: number, error: string) => void,
  ) {
    this.doorbell = libc.eventfd();
    this.worker = new Worker(new URL("./worker.ts", import.meta.url).href);
    this.ready = new Promise<void>((resolve, reject) => {
      this.worker.onmessage = (ev: MessageEvent<Reply>) => {
        const r = ev.data;
        if (r.t === "ready") resolve();
        else if (r.t === "done") {
          const w = this.waiting.get(r.seq);
          this.waiting.delete(r.seq);
          if (r.error) w?.reject(new Error(r.error));
          else w?.resolve();
        } else if (r.t === "portFailed") this.onPortFailed(r.sw, r.id, r.error);
        else this.die(new Error(`switch worker: ${r.error}`), reject);
      };
      this.worker.onerror = (ev) => this.die(new Error(`switch worker: ${(ev as ErrorEvent).message}`), reject);
    });
    const init: WorkerInit = {
      t: "init",
      doorbell: this.doorbell,
      ctl: this.ctl.buffer as SharedArrayBuffer,
      spinUs,
      cpu,
    };
    this.worker.postMessage(init);
  }

  private die(e: Error, reject: (e: Error) => void): void {
    this.dead = e;
    reject(e);
    for (const w of this.waiting.values()) w.reject(e);
    this.waiting.clear();
  }

  /** Post a command, wake the worker, resolve when it has been applied. */
  send(c: Cmd): Promise<void> {
    if (this.dead) return Promise.reject(this.dead);
    const seq = ++this.seq;
    const p = new Promise<void>((resolve, reject) => this.waiting.set(seq, { resolve, reject }));
    this.worker.postMessage({ ...c, seq } as Command);
    Atomics.add(this.ctl, CTL.posted, 1);
    libc.eventfdSignal(this.doorbell);
    return p;
  }

  async stop(): Promise<void> {
    if (!this.dead) {
      // a worker that does not answer in 3 s is terminated anyway; the timer must not outlive the
      // answer (a pending Bun.sleep kept the process alive 3 s after every engine.close())
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        this.send({ t: "stop" }).catch(() => undefined),
        new Promise((r) => {
          timer = setTimeout(r, 3000);
        }),
      ]);
      clearTimeout(timer);
    }
    this.worker.terminate();
    libc.close(this.doorbell);
  }
}

export class SwitchEngine {
  private readonly pool: EngineWorker[] = [];
  private readonly max: number;
  private readonly spinUs: number;
  private readonly cpus: number[];
  private readonly pin: boolean;
  private nextSw = 1;
  private readonly handles = new Map<number, SwitchHandle>();

  constructor(opts: EngineOptions = {}) {
    this.max = Math.max(1, opts.workers ?? availableParallelism());
    this.spinUs = opts.spinUs ?? Number(process.env.BUNMAP_SPIN_US ?? 50);
    this.cpus = allowedCpus();
    this.pin = opts.pin ?? process.env.BUNMAP_PIN === "1";
  }

  /** Workers started so far. */
  get workers(): number {
    return this.pool.length;
  }

  private async start(): Promise<EngineWorker> {
    const cpu = this.cpus.length ? this.cpus[this.pool.length % this.cpus.length] : -1;
    const w = new EngineWorker(this.spinUs, this.pin ? cpu : -1, (sw, id, error) =>
      this.handles.get(sw)?.portFailed(id, error),
    );
    this.pool.push(w);
    try {
      await w.ready;
    } catch (e) {
      this.pool.splice(this.pool.indexOf(w), 1);
      await w.stop();
      throw e;
    }
    return w;
  }

  /** A new switch with no ports. */
  async createSwitch(opts: SwitchOptions = {}): Promise<SwitchHandle> {
    const rings = opts.rings ?? 1;
    if (rings > this.max)
      throw new Error(`a switch over ${rings} rings needs ${rings} workers; this engine has at most ${this.max}`);
    // a new worker while the pool has room and every started one already carries a switch
    while (this.pool.length < rings || (this.pool.length < this.max && this.pool.every((w) => w.switches > 0)))
      await this.start();
    const chosen =
      rings > 1
        ? this.pool.slice(0, rings)
        : [this.pool.reduce((a, b) => (b.ports < a.ports || (b.ports === a.ports && b.switches < a.switches) ? b : a))];
    const sw = this.nextSw++;
    const h = new SwitchHandle(sw, chosen, opts, () => this.handles.delete(sw));
    await h.open();
    this.handles.set(sw, h);
    return h;
  }

  async close(): Promise<void> {
    for (const h of [...this.handles.values()]) await h.close().catch(() => undefined);
    await Promise.all(this.pool.map((w) => w.stop()));
    this.pool.length = 0;
  }
}

export class SwitchHandle {
  readonly fdb: Fdb;
  readonly maxPorts: number;
  private readonly counters: SharedArrayBuffer;
  private readonly gen: Uint32Array;
  private readonly free: number[] = [];
  private nextSlot = 0;
  private readonly names = new Map<number, string>();
  private closed = false;
  /** Told when a worker took a failed port off this switch. */
  onPortFailed: ((id: number, name: string, error: string) => void) | null = null;

  constructor(
    readonly sw: number,
    private readonly workers: EngineWorker[],
    private readonly opts: SwitchOptions,
    private readonly gone: () => void,
  ) {
    this.maxPorts = opts.maxPorts ?? 256;
    if (this.maxPorts > MAX_PORTS) throw new Error(`maxPorts ${this.maxPorts}: at most ${MAX_PORTS}`);
    this.fdb = new Fdb(opts.fdbLog2 ?? 12, opts.age ?? 300);
    if (opts.kernelFastPath && (workers.length > 1 || opts.lookup || opts.learn === false))
      throw new Error("the kernel fast path needs a switch on one ring that learns, with the learning lookup");
    this.counters = new SharedArrayBuffer(8 * counterBlock(this.maxPorts) * workers.length);
    this.gen = new Uint32Array(this.maxPorts);
  }

  private fast: FastPathFds | null = null;

  async open(): Promise<void> {
    const rings = this.workers.length;
    if (this.opts.kernelFastPath) this.fast = createFastPath();
    await Promise.all(
      this.workers.map((w, r) =>
        w.send({
          t: "addSwitch",
          spec: {
            sw: this.sw,
            ring: rings > 1 ? r : -1,
            rings,
            fdb: this.fdb.sab,
            age: this.fdb.ageSec,
            lookup: this.opts.lookup ?? null,
            learn: this.opts.learn !== false,
            burst: this.opts.burst ?? 512,
            counters: this.counters,
            maxPorts: this.maxPorts,
            fast: this.fast,
          },
        }),
      ),
    );
    for (const w of this.workers) w.switches++;
  }

  /**
   * Open the named port on the switch's worker(s) and put it on the switch; resolves to its id.
   * `stations`: MACs known to be behind the port (a container's own, as it joins), learned at once,
   * so that its first broadcast already takes the kernel fast path's flood.
   */
  async addPort(name: string, stations: string[] = []): Promise<number> {
    for (const m of stations) parseMac(m); // a bad MAC is refused before anything is opened
    if (this.closed) throw new Error("the switch is closed");
    const slot = this.free.pop() ?? this.nextSlot++;
    if (slot >= this.maxPorts) {
      this.nextSlot--;
      throw new Error(`the switch is full (${this.maxPorts} ports)`);
    }
    const id = portId(++this.gen[slot], slot);
    const rings = this.workers.length;
    const res = await Promise.allSettled(
      this.workers.map((w, r) =>
        w.send({ t: "addPort", sw: this.sw, id, name: ringName(name, rings > 1 ? r : -1), stations }),
      ),
    );
    const bad = res.find((r) => r.status === "rejected") as PromiseRejectedResult | undefined;
    if (bad) {
      await Promise.allSettled(this.workers.map((w) => w.send({ t: "removePort", sw: this.sw, id })));
      this.free.push(slot);
      throw bad.reason;
    }
    this.names.set(id, name);
    for (const w of this.workers) w.ports++;
    return id;
  }

  /** Take a port off the switch and close it; stations learned on it are forgotten. */
  async removePort(id: number): Promise<void> {
    if (!this.names.has(id)) return;
    await Promise.all(this.workers.map((w) => w.send({ t: "removePort", sw: this.sw, id })));
    this.release(id);
  }

  private release(id: number): void {
    this.names.delete(id);
    this.fdb.forget(id);
    this.free.push(slotOf(id));
    for (const w of this.workers) w.ports--;
  }

  /** A worker dropped a port whose sync failed: drop it everywhere and say so. */
  portFailed(id: number, error: string): void {
    const name = this.names.get(id);
    if (name === undefined) return;
    for (const w of this.workers) w.send({ t: "removePort", sw: this.sw, id }).catch(() => undefined);
    this.release(id);
    this.onPortFailed?.(id, name, error);
  }

  /** Ports now on the switch: id and the name it was added with. */
  ports(): { id: number; name: string }[] {
    return [...this.names].map(([id, name]) => ({ id, name }));
  }

  /** Switch counters summed over its workers. */
  stats(): SwitchCounters {
    const r = zeroCounters(SW_CTR);
    const f = new Float64Array(this.counters),
      block = counterBlock(this.maxPorts);
    for (let w = 0; w < this.workers.length; w++) addCounters(SW_CTR, f, w * block, r);
    return r;
  }

  /** Stations the kernel fast path redirects to now (0 without it). */
  kernelStations(): number {
    return this.fast ? kernelStations(this.fast) : 0;
  }

  /** Packets and bytes the kernel fast path moved for one port (received from it, sent to it),
   * already part of portStats; zeros without a fast path. */
  kernelCounts(id: number): KernelCounts {
    return this.fast && this.names.has(id)
      ? kernelPortCounts(this.fast, slotOf(id))
      : { rx: 0, tx: 0, rxBytes: 0, txBytes: 0 };
  }

  /** The learning table now: each live station, the port it is behind (by id), seconds since seen. */
  stations(): { mac: string; port: number; age: number }[] {
    return [...this.fdb.entries(Math.floor(Date.now() / 1000))];
  }

  /** Packets received from, sent to, and dropped on the way to one port (since it joined), the
   * kernel fast path's included. */
  portStats(id: number): PortCounters {
    const r = zeroCounters(PORT_CTR);
    if (!this.names.has(id)) return r;
    const f = new Float64Array(this.counters),
      block = counterBlock(this.maxPorts);
    for (let w = 0; w < this.workers.length; w++)
      addCounters(PORT_CTR, f, w * block + SW_CTR.stride + slotOf(id) * PORT_CTR.stride, r);
    if (this.fast) {
      const k = kernelPortCounts(this.fast, slotOf(id));
      r.rx += k.rx;
      r.tx += k.tx;
      r.rxBytes += k.rxBytes;
      r.txBytes += k.txBytes;
    }
    return r;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await Promise.allSettled(this.workers.map((w) => w.send({ t: "removeSwitch", sw: this.sw })));
    if (this.fast) closeFastPath(this.fast);
    this.fast = null;
    for (const w of this.workers) {
      w.switches--;
      w.ports -= this.names.size;
    }
    this.names.clear();
    this.gone();
  }
}
