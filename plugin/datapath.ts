// One switch per Docker network. With /dev/netmap: kernel VALE (host veth ends attached with the
// emulated adapter forced). Without: a switch on bunmap's switch engine (one small pool of worker
// threads for every network) over the host veth ends opened as packet: (or xdp:) ports.
// Membership changes touch only the port that changed: the others keep forwarding, and learned
// stations stay bound to their own port.
import {
  type Ctl,
  DevNetmapCtl,
  type PortCounters,
  type SwitchCounters,
  SwitchEngine,
  type SwitchHandle,
  setAdmode,
  valeControl as valeRun,
} from "../src/index.ts";
import { BACKEND, type Backend } from "./backends.ts";

export interface PortCount {
  port: string;
  rx: number | null;
  tx: number | null;
  dropped: number | null;
}

/** What a switch reports when scraped (plugin/metrics.ts): its counters, each port's, its stations. */
export interface DatapathMetrics {
  switch: SwitchCounters;
  ports: { port: string; counters: PortCounters; fast: { rx: number; tx: number } }[];
  /** the learning table: station, the port it is behind (its name), seconds since seen */
  stations: { mac: string; port: string; age: number }[];
  /** stations the kernel fast path redirects to */
  kernelStations: number;
}

export interface Datapath {
  readonly kind: Backend;
  /** Make the switch carry exactly these host interfaces and this uplink port (or null), adding
   * and removing only the difference; `stations`: the MACs behind an interface, learned as it joins;
   * `extra`: ports by their full names (containers' zero-copy ports, plugin/cnf.ts). */
  setPorts(
    ifnames: string[],
    uplink?: string | null,
    stations?: Map<string, string[]>,
    extra?: string[],
  ): Promise<void>;
  /** Packets per port; null where the datapath keeps none we can read (kernel VALE). */
  counters(): PortCount[];
  /** null where the switch counts in the kernel, unexposed (VALE) */
  metrics(): DatapathMetrics | null;
  stop(): Promise<void>;
}

/** A network's switch on the shared engine. */
export class EngineSwitch implements Datapath {
  private sw: SwitchHandle | null = null;
  private readonly ids = new Map<string, number>();
  private uplink: { port: string; id: number } | null = null;

  constructor(
    readonly kind: "packet" | "xdp",
    private readonly name: string,
    private readonly engine: SwitchEngine,
    private readonly log: (msg: string) => void = () => {},
  ) {}

  async setPorts(
    ifnames: string[],
    uplink: string | null = null,
    stations: Map<string, string[]> = new Map(),
    extra: string[] = [],
  ): Promise<void> {
    if (!this.sw) {
      this.sw = await this.engine.createSwitch({
        maxPorts: 1024,
        fdbLog2: 12,
        age: 300,
        burst: 256,
        kernelFastPath: BACKEND[this.kind].fastPath,
      });
      this.sw.onPortFailed = (id, port, error) => {
        for (const [n, i] of this.ids) if (i === id) this.ids.delete(n);
        if (this.uplink?.id === id) this.uplink = null;
        this.log(`switch ${this.name}: ${port} taken off: ${error}`);
      };
    }
    if (this.uplink && this.uplink.port !== uplink) {
      await this.sw.removePort(this.uplink.id);
      this.uplink = null;
    }
    if (uplink && !this.uplink) this.uplink = { port: uplink, id: await this.sw.addPort(uplink) };
    const want = new Set([...ifnames, ...extra]);
    for (const [n, id] of [...this.ids]) {
      if (want.has(n)) continue;
      await this.sw.removePort(id);
      this.ids.delete(n);
    }
    for (const n of ifnames) {
      if (this.ids.has(n)) continue;
      this.ids.set(n, await this.sw.addPort(BACKEND[this.kind].port(n), stations.get(n) ?? []));
    }
    for (const spec of extra)
      if (!this.ids.has(spec)) this.ids.set(spec, await this.sw.addPort(spec, stations.get(spec) ?? []));
  }

  counters(): PortCount[] {
    const ports = [...this.ids];
    if (this.uplink) ports.push([this.uplink.port, this.uplink.id]);
    return ports.map(([port, id]) => ({ port, ...this.sw!.portStats(id) }));
  }

  metrics(): DatapathMetrics | null {
    const sw = this.sw;
    if (!sw) return null;
    const ports = [...this.ids];
    if (this.uplink) ports.push([this.uplink.port, this.uplink.id]);
    const nameOf = new Map(ports.map(([p, id]) => [id, p]));
    return {
      switch: sw.stats(),
      ports: ports.map(([port, id]) => ({ port, counters: sw.portStats(id), fast: sw.kernelCounts(id) })),
      stations: sw.stations().flatMap((s) => (nameOf.has(s.port) ? [{ ...s, port: nameOf.get(s.port)! }] : [])),
      kernelStations: sw.kernelStations(),
    };
  }

  async stop(): Promise<void> {
    await this.sw?.close();
    this.sw = null;
    this.ids.clear();
    this.uplink = null;
  }
}

/** Kernel VALE: attach host veth ends to vale<name> (emulated adapter: containers use the kernel stack). */
export class ValeSwitch implements Datapath {
  readonly kind = "vale" as const;
  private attached = new Set<string>();
  /** @param ctl where NIOCCTRL requests go (/dev/netmap by default); @param sysRoot for the admode parameter */
  constructor(
    private readonly sw: string,
    private readonly ctl: Ctl & { close?(): void } = new DevNetmapCtl(),
    sysRoot = "/sys",
  ) {
    // containers keep the kernel stack on their veth end: netmap must use the emulated adapter
    setAdmode("generic", sysRoot);
  }
  async setPorts(ifnames: string[], uplink: string | null = null): Promise<void> {
    if (uplink) throw new Error("kernel VALE takes no vxlan uplink (the driver refuses it at CreateNetwork)");
    for (const n of ifnames)
      if (!this.attached.has(n)) {
        valeRun(this.ctl, { op: "attach", name: `${this.sw}:${n}`, hostStack: false, conf: [0, 0, 0, 0], memId: 0 });
        this.attached.add(n);
      }
    for (const n of [...this.attached])
      if (!ifnames.includes(n)) {
        valeRun(this.ctl, { op: "detach", name: `${this.sw}:${n}` });
        this.attached.delete(n);
      }
  }
  counters(): PortCount[] {
    return [...this.attached].map((port) => ({ port, rx: null, tx: null, dropped: null }));
  } // VALE counts in the kernel, unexposed
  metrics(): null {
    return null;
  }
  async stop(): Promise<void> {
    await this.setPorts([]);
    this.ctl.close?.();
  }
}

export type MakeDatapath = (kind: Backend, name: string) => Datapath;

/** Datapaths of one plugin: kernel VALE, or switches on one shared engine started on first use. */
export function datapathFactory(log: (msg: string) => void = () => {}): { make: MakeDatapath; close(): Promise<void> } {
  let engine: SwitchEngine | null = null;
  return {
    make: (kind, name) =>
      kind === "vale" ? new ValeSwitch(name) : new EngineSwitch(kind, name, (engine ??= new SwitchEngine()), log),
    close: async () => {
      await engine?.close();
      engine = null;
    },
  };
}
