// Make the machine carry what the state says, and nothing else (Snabb's `configure`: the whole wanted
// configuration in, only the difference applied): each switch carries the gateway ports and joined
// endpoints of its networks (its uplink too), a switch with no network left stops, and the firewall
// and proxies hold every routed network's NAT and published ports. Idempotent: running it twice
// changes nothing; after a failure the state is put back and it runs again (driver.ts).
import type { CnfPorts } from "./cnf.ts";
import { isCniNetwork } from "./cni.ts";
import { type Datapath, type DatapathMetrics, datapathFactory, type MakeDatapath, type PortCount } from "./datapath.ts";
import { Firewall, type Published, type RoutedNet } from "./firewall.ts";
import { gatewayMac, gatewayNames } from "./gateway.ts";
import { hasGateway, uplinkOf } from "./plan.ts";
import type { Proxies } from "./proxy.ts";
import { Refused } from "./refused.ts";
import type { State } from "./state.ts";
import { have } from "./tools.ts";
import { ensureUplinkDevice, sweepUplinkDevices } from "./uplink-dev.ts";
import { linkExists } from "./veth.ts";

export interface ReconcileOptions {
  makeDatapath?: MakeDatapath;
  firewall?: Firewall;
  proxies: Proxies | null;
  log: (msg: string) => void;
}

export class Reconciler {
  private readonly paths = new Map<string, Datapath>();
  private readonly mk: MakeDatapath;
  private readonly closeDatapaths: () => Promise<void>;
  private readonly fw: Firewall;
  private readonly proxies: Proxies | null;
  /** Containers' zero-copy ports (set by the driver): more ports of a network's switch. */
  cnf: CnfPorts | null = null;
  /** Why the routing the state asks for is not in place (a missing tool, a failed rule), or null. */
  routingProblem: string | null = null;

  constructor(
    private readonly state: State,
    opts: ReconcileOptions,
  ) {
    const f = datapathFactory(opts.log);
    this.mk = opts.makeDatapath ?? f.make;
    this.closeDatapaths = f.close;
    this.fw = opts.firewall ?? new Firewall(state.instance);
    this.proxies = opts.proxies;
  }

  /** Bring these switches (default: every one the state or the machine has) and, unless told not
   * to, the routing in line with the state. */
  async reconcile(what: { switches?: string[]; routing?: boolean } = {}): Promise<void> {
    const names = what.switches ?? [...new Set([...this.state.networks().map((n) => n.switch), ...this.paths.keys()])];
    let stopped = false;
    for (const sw of names) stopped = (await this.switch(sw)) || stopped;
    // uplink devices no network uplinks any more (a switch stopped; a crash in between: the full
    // reconcile after a restart) go; without ip nothing can be listed (recovery says so)
    if ((stopped || !what.switches) && have("ip")) {
      const vnis = this.state.networks().flatMap((n) => uplinkOf(n)?.device?.vni ?? []);
      sweepUplinkDevices(this.state.instance, new Set(vnis));
    }
    if (what.routing !== false) await this.routing();
  }

  /** A switch carries the gateways and joined endpoints (whose veth exists) of every network on it
   * (one, or all of a slice), and their uplink; with no network left it stops (true). */
  private async switch(name: string): Promise<boolean> {
    const nets = this.state.networks().filter((x) => x.switch === name);
    let dp = this.paths.get(name);
    if (!nets.length) {
      await dp?.stop();
      this.paths.delete(name);
      this.cnf?.settleGone();
      return true;
    }
    // each port with the station known to be behind it (the gateway's host end, the container's
    // interface): learned as the port joins, so its first broadcast can take the kernel's flood
    const ports: string[] = [],
      stations = new Map<string, string[]>();
    for (const x of nets) {
      const gw = gatewayNames(x.id).sw;
      if (hasGateway(x) && linkExists(gw)) {
        ports.push(gw);
        stations.set(gw, [gatewayMac(x.id, this.state.instance)]);
      }
      for (const e of this.state.endpoints(x.id))
        if (e.joined && linkExists(e.host_if)) {
          ports.push(e.host_if);
          stations.set(e.host_if, [e.mac]);
        }
    }
    const uplink = uplinkOf(nets[0]);
    // the uplink's vxlan device before its port; made afresh when the switch starts (nothing holds it)
    if (uplink?.device) ensureUplinkDevice(uplink.device, this.state.instance, !dp);
    if (!dp) {
      dp = this.mk(nets[0].backend, name);
      this.paths.set(name, dp);
    }
    const extra: string[] = [];
    for (const x of nets)
      for (const p of this.cnf?.switchPorts(x.id) ?? []) {
        extra.push(p.spec);
        stations.set(p.spec, p.stations);
      }
    await dp.setPorts(ports, uplink?.port ?? null, stations, extra);
    for (const x of nets) this.cnf?.settle(x.id);
    return false;
  }

  /** The NAT and filter rules every routed network and published port needs now, and the proxies
   * for published TCP and UDP ports (loopback and hairpin clients). */
  private async routing(): Promise<void> {
    const routed = this.state.networks().filter((n) => !n.internal && n.pool && n.gateway);
    const cni = new Set(this.state.cniAttachments().map((a) => a.network));
    const nets: RoutedNet[] = routed.map((n) => ({
      bridge: gatewayNames(n.id).host,
      subnet: n.pool,
      anyDnat: cni.has(n.id) || isCniNetwork(n.id),
    }));
    const pubs: Published[] = routed.flatMap((n) =>
      this.state
        .endpoints(n.id)
        .flatMap((e) =>
          this.state.ports(e).map((p) => ({ ...p, bridge: gatewayNames(n.id).host, ip: e.address.split("/")[0] })),
        ),
    );
    const fail = (e: Refused): never => {
      this.routingProblem = e.message;
      throw e;
    };
    try {
      this.fw.apply(nets, pubs);
    } catch (e) {
      fail(e instanceof Refused ? e : new Refused(`firewall: ${(e as Error).message}`));
    }
    try {
      await this.proxies?.sync(pubs.flatMap((p) => (p.proto === "sctp" ? [] : [{ ...p, proto: p.proto }])));
    } catch (e) {
      fail(new Refused((e as Error).message));
    }
    this.routingProblem = null;
  }

  /** Packets per port of a switch ([] if it is not running). */
  counters(sw: string): PortCount[] {
    return this.paths.get(sw)?.counters() ?? [];
  }

  /** A switch's counters and learning table, for metrics (null: not running, or VALE). */
  metrics(sw: string): DatapathMetrics | null {
    return this.paths.get(sw)?.metrics() ?? null;
  }

  /** Stop every switch (the state stays: a restart brings them back). */
  async stop(): Promise<void> {
    for (const dp of this.paths.values()) await dp.stop();
    this.paths.clear();
    this.proxies?.close();
    await this.closeDatapaths();
  }
}
