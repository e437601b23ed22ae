// The "vale" network driver's operations, apart from HTTP: each one checks its request (plan.ts,
// publish.ts, validate.ts), writes the state, and has reconcile.ts make the machine follow; if the
// machine cannot, the state is put back and followed again, so a call either completes or leaves
// nothing behind. Operations run one at a time. recovery.ts rebuilds everything after a restart;
// view.ts is the management view.
import { BACKEND, type Backend, netmapAvailable } from "./backends.ts";
import { CnfPorts } from "./cnf.ts";
import { CniAttachments } from "./cni.ts";
import type { MakeDatapath } from "./datapath.ts";
import type { Firewall } from "./firewall.ts";
import { createGatewayOf, deleteGateway, forgetNeighbour, ipv4Forwarding } from "./gateway.ts";
import { hasGateway, planNetwork } from "./plan.ts";
import { Proxies } from "./proxy.ts";
import { planBindings } from "./publish.ts";
import { Reconciler } from "./reconcile.ts";
import { type Restored, recover } from "./recovery.ts";
import { Refused, refusedFor, short } from "./refused.ts";
import type { AllocateNetwork, CreateEndpoint, CreateNetwork, EndpointRef, Join } from "./schemas.ts";
import { PORTMAP, type ProgramExternalConnectivity } from "./schemas.ts";
import type { EndpointRow, NetworkRow, State } from "./state.ts";
import { need, type Tool } from "./tools.ts";
import { checkUplink, underlayMtu } from "./uplink.ts";
import { checkCidr, checkMac, checkOptions } from "./validate.ts";
import {
  createVeth,
  deleteMarked,
  deleteVeth,
  linkExists,
  type Mark,
  macFor,
  markOf,
  markText,
  vethNames,
} from "./veth.ts";
import { networkView } from "./view.ts";

export interface DriverOptions {
  /** Datapath when a network does not choose one (--opt backend=...). */
  defaultBackend?: Backend;
  makeDatapath?: MakeDatapath;
  /** Where datapath events (a port taken off after an error) and recovery problems are reported. */
  log?: (msg: string) => void;
  /** NAT and published ports (default: iptables in this network namespace). */
  firewall?: Firewall;
  /** Userland proxies for published ports (default: on; null: none). */
  proxies?: Proxies | null;
  /** What GetCapabilities says: local (each engine allocates), or global (swarm managers allocate
   * addresses across nodes; Docker accepts that from managed plugins only, README). */
  scope?: "local" | "global";
  /** How often routing that could not be applied (a missing tool) is tried again, in ms. */
  retryMs?: number;
}

/** The tools a routed network's NAT and published ports need. */
const ROUTING: Tool[] = ["iptables", "iptables-restore"];

export class Driver {
  private lock: Promise<unknown> = Promise.resolve();
  readonly defaultBackend: Backend;
  private readonly scope: "local" | "global";
  private readonly rec: Reconciler;
  private readonly log: (msg: string) => void;
  private readonly retryMs: number;
  /** Containers' zero-copy ports and the socket they are asked for on. */
  readonly cnf: CnfPorts;
  /** CNI runtimes' containers (the bunmap executable's requests). */
  readonly cni: CniAttachments;
  private retry: ReturnType<typeof setInterval> | null = null;

  constructor(
    readonly state: State,
    opts: DriverOptions = {},
  ) {
    this.log = opts.log ?? (() => {});
    this.rec = new Reconciler(state, {
      makeDatapath: opts.makeDatapath,
      firewall: opts.firewall,
      proxies: opts.proxies === undefined ? new Proxies() : opts.proxies,
      log: this.log,
    });
    this.cnf = new CnfPorts(state, {
      exclusive: (f) => this.exclusive(f),
      reconcile: (n) => this.rec.reconcile({ switches: [n.switch], routing: false }),
      log: this.log,
    });
    this.rec.cnf = this.cnf;
    this.cni = new CniAttachments(this, state);
    this.defaultBackend = opts.defaultBackend ?? (netmapAvailable() ? "vale" : "packet");
    this.scope = opts.scope ?? "local";
    this.retryMs = opts.retryMs ?? 5000;
  }

  /** Serialise operations: Docker may call concurrently, veths and workers must not interleave. */
  private exclusive<T>(f: () => Promise<T> | T): Promise<T> {
    const next = this.lock.then(f, f);
    this.lock = next.catch(() => undefined);
    return next;
  }

  /**
   * The shape of every change: write the state, make the machine follow it; if it cannot, put the
   * state back, make the machine follow that (so nothing half-done stays), and refuse with the reason.
   */
  private async change(what: string, write: () => void, undo: () => void, follow: () => Promise<void>) {
    write();
    try {
      await follow();
    } catch (e) {
      undo();
      await follow().catch(() => undefined);
      throw refusedFor(what, e);
    }
  }

  activate() {
    return { Implements: ["NetworkDriver"] };
  }
  capabilities() {
    return { Scope: this.scope, ConnectivityScope: this.scope };
  }

  /** Swarm managers (global scope) call this once per network; the options returned reach every
   * node's CreateNetwork. Checked here, so a bad -o fails `docker network create`, not each node. */
  allocateNetwork(b: AllocateNetwork) {
    const generic = checkOptions(b.Options);
    checkUplink(generic, (generic.backend ?? this.defaultBackend) as Backend);
    return { Options: generic };
  }

  createNetwork(b: CreateNetwork) {
    return this.exclusive(async () => {
      const plan = planNetwork(b, {
        defaultBackend: this.defaultBackend,
        networks: this.state.networks(),
        unavailable: (x) => BACKEND[x].unavailable(),
        ipForwarding: ipv4Forwarding(),
        underlay: underlayMtu,
        now: Date.now(),
      });
      if (this.state.network(b.NetworkID)) return {}; // the engine retried: same network
      const { row } = plan;
      const what = `network ${short(row.id)}`;
      // the uplink's vxlan device (ip), and its peers' entries (bridge)
      if (plan.uplink?.device) need("ip", ...(plan.uplink.device.remotes.length ? (["bridge"] as const) : []));
      if (plan.gateway) {
        need("ip", ...(row.pool && !row.internal ? ROUTING : []));
        // the gateway's addresses live on a host interface that is a port of the switch
        try {
          createGatewayOf(row, this.state.instance);
        } catch (e) {
          throw refusedFor(what, e);
        }
      }
      try {
        await this.change(
          what,
          () => this.state.addNetwork(row),
          () => this.state.deleteNetwork(row.id),
          // an uplinked switch runs from the start: the other hosts' containers may already be there
          () =>
            this.rec.reconcile({ switches: plan.gateway || plan.uplink ? [row.switch] : [], routing: plan.gateway }),
        );
      } catch (e) {
        if (plan.gateway) deleteGateway(row.id, this.state.instance);
        throw e;
      }
      return {};
    });
  }

  deleteNetwork(b: { NetworkID: string }) {
    return this.exclusive(async () => {
      const n = this.networkOf(b.NetworkID);
      const eps = this.state.endpoints(n.id);
      if (eps.length) throw new Refused(`network ${short(n.id)} still has ${eps.length} endpoint(s)`);
      const routed = hasGateway(n);
      if (routed) need("ip", ...ROUTING);
      await this.change(
        `network ${short(n.id)}`,
        () => this.state.deleteNetwork(n.id),
        () => this.state.addNetwork(n),
        () => this.rec.reconcile({ switches: [n.switch], routing: false }), // a shared switch goes on with the others
      );
      if (routed) {
        deleteGateway(n.id, this.state.instance);
        await this.rec.reconcile({ switches: [] });
      }
      return {};
    });
  }

  /** `into`: a namespace path the container end is made in (CNI); Docker's moves it itself. */
  createEndpoint(b: CreateEndpoint, into?: string) {
    return this.exclusive(async () => {
      const n = this.networkOf(b.NetworkID);
      const given = b.Interface?.MacAddress ? checkMac(b.Interface.MacAddress, "Interface.MacAddress") : "";
      if (b.Interface?.Address) checkCidr(b.Interface.Address, 4, "Interface.Address");
      if (b.Interface?.AddressIPv6) checkCidr(b.Interface.AddressIPv6, 6, "Interface.AddressIPv6");
      const old = this.state.endpoint(b.EndpointID);
      if (old) {
        if (old.network !== n.id) throw new Refused(`endpoint ${short(b.EndpointID)} belongs to another network`);
        return given ? { Interface: {} } : { Interface: { MacAddress: old.mac } };
      }
      need("ip");
      const mac = (given || macFor(b.EndpointID, b.Interface?.Address ?? "")).toLowerCase();
      const mark: Mark = { instance: this.state.instance, kind: "ep", id: b.EndpointID };
      const { host, cont } = this.freeNames(mark);
      try {
        createVeth(host, cont, mac, n.mtu, BACKEND[n.backend].veth, mark, into);
      } catch (e) {
        throw refusedFor(`endpoint ${short(b.EndpointID)}`, e);
      }
      try {
        this.state.addEndpoint({
          id: b.EndpointID,
          network: n.id,
          host_if: host,
          cont_if: cont,
          mac,
          address: b.Interface?.Address ?? "",
          address6: b.Interface?.AddressIPv6 ?? "",
          joined: 0,
          sandbox: "",
          ports: "[]",
        });
      } catch (e) {
        deleteVeth(host);
        throw e;
      }
      // fields the engine supplied must not come back (libnetwork refuses them)
      return given ? { Interface: {} } : { Interface: { MacAddress: mac } };
    });
  }

  /** Names for an endpoint's veths that nothing else holds (another endpoint whose ID starts alike,
   * an interface not ours); an orphan of this very endpoint, from a crash before its row was
   * written, is removed first. */
  private freeNames(mark: Mark): { host: string; cont: string } {
    for (let attempt = 0; attempt < 16; attempt++) {
      const c = vethNames(mark.id, attempt);
      const m = markOf(c.host);
      if (m && markText(m) === markText(mark) && !this.state.ifInUse(c.host)) deleteVeth(c.host);
      if (!linkExists(c.host) && !linkExists(c.cont) && !this.state.ifInUse(c.host) && !this.state.ifInUse(c.cont))
        return c;
    }
    throw new Refused(`endpoint ${short(mark.id)}: no free interface name after 16 tries`);
  }

  endpointOperInfo(b: EndpointRef) {
    const e = this.endpointOf(b);
    return {
      Value: {
        host_interface: e.host_if,
        container_interface: e.cont_if,
        mac: e.mac,
        address: e.address,
        joined: !!e.joined,
        ports: this.state.ports(e),
      },
    };
  }

  /** Docker's port bindings for the container (-p): DNAT from the host's ports to the endpoint. */
  programExternalConnectivity(b: ProgramExternalConnectivity) {
    return this.exclusive(async () => {
      const e = this.endpointOf(b);
      const n = this.networkOf(e.network);
      const taken = this.state
        .endpoints()
        .filter((x) => x.id !== e.id)
        .flatMap((x) => this.state.ports(x).map((p) => ({ ...p, ep: x.id })));
      const chosen = planBindings(b.Options?.[PORTMAP] ?? [], e, n, taken);
      const before = this.state.ports(e);
      if (chosen.length || before.length) need(...ROUTING);
      await this.change(
        `endpoint ${short(e.id)}`,
        () => this.state.setPorts(e.id, chosen),
        () => this.state.setPorts(e.id, before),
        () => this.rec.reconcile({ switches: [] }),
      );
      return {};
    });
  }

  revokeExternalConnectivity(b: EndpointRef) {
    return this.exclusive(async () => {
      await this.unpublish(this.endpointOf(b));
      return {};
    });
  }

  private async unpublish(e: EndpointRow): Promise<void> {
    const before = this.state.ports(e);
    if (!before.length) return;
    need(...ROUTING);
    await this.change(
      `endpoint ${short(e.id)}`,
      () => this.state.setPorts(e.id, []),
      () => this.state.setPorts(e.id, before),
      () => this.rec.reconcile({ switches: [] }),
    );
  }

  deleteEndpoint(b: EndpointRef) {
    return this.exclusive(async () => {
      const e = this.endpointOf(b);
      need("ip");
      await this.unpublish(e);
      if (e.joined) await this.detach(e);
      // ours by its mark; gone already if the container's namespace went away: fine
      deleteMarked(e.host_if, { instance: this.state.instance, kind: "ep", id: e.id });
      for (const a of [e.address, e.address6]) forgetNeighbour(e.network, a);
      this.state.deleteEndpoint(e.id);
      return {};
    });
  }

  join(b: Join) {
    return this.exclusive(async () => {
      const e = this.endpointOf(b);
      const n = this.networkOf(e.network);
      if (!linkExists(e.host_if))
        throw new Refused(`endpoint ${short(e.id)}: its veth ${e.host_if} is gone; remove and recreate the endpoint`);
      await this.change(
        `endpoint ${short(e.id)}`,
        () => this.state.setJoined(e.id, true, b.SandboxKey),
        () => this.state.setJoined(e.id, false),
        () => this.rec.reconcile({ switches: [n.switch], routing: false }),
      );
      const r: Record<string, unknown> = { InterfaceName: { SrcName: e.cont_if, DstPrefix: "eth" } };
      // --internal: no gateway, so no default route (Docker attaches no fallback gateway bridge either)
      if (!n.internal && n.gateway) r.Gateway = n.gateway;
      if (!n.internal && n.gateway6) r.GatewayIPv6 = n.gateway6;
      return r;
    });
  }

  leave(b: EndpointRef) {
    return this.exclusive(async () => {
      const e = this.endpointOf(b);
      await this.unpublish(e);
      await this.detach(e);
      return {};
    });
  }

  private async detach(e: EndpointRow): Promise<void> {
    this.state.setJoined(e.id, false);
    const n = this.state.network(e.network);
    if (n) await this.rec.reconcile({ switches: [n.switch], routing: false });
  }

  /** After a restart: drop veths nobody owns, rebuild every network's switch and the routing. What
   * cannot be done now is logged; routing that could not be applied is tried again until it is. */
  restore(): Promise<Restored> {
    return this.exclusive(async () => {
      const cnf = this.cnf.restore();
      const r = await recover(this.state, this.rec);
      r.cnfPorts = cnf;
      for (const p of r.problems) this.log(p);
      if (this.rec.routingProblem) this.retryRouting();
      return r;
    });
  }

  /** Try the routing again every retryMs until it is in place (a tool installed, a rule accepted). */
  private retryRouting(): void {
    if (this.retry) return;
    this.retry = setInterval(() => {
      this.exclusive(async () => {
        if (this.rec.routingProblem === null) return;
        await this.rec.reconcile({ switches: [] });
        this.log("NAT and published ports are in place again");
      })
        .catch(() => undefined)
        .finally(() => {
          if (this.rec.routingProblem === null && this.retry) {
            clearInterval(this.retry);
            this.retry = null;
          }
        });
    }, this.retryMs);
  }

  view() {
    return networkView(this.state, this.rec);
  }

  /** A running switch's counters and learning table (null: none, or kernel VALE's). */
  switchMetrics(sw: string) {
    return this.rec.metrics(sw);
  }

  /** Rewrite NAT and filter rules from the state (CNI attachments on a Docker network change them). */
  refreshRouting(): Promise<void> {
    return this.exclusive(() => this.rec.reconcile({ switches: [] }));
  }

  async shutdown(): Promise<void> {
    if (this.retry) clearInterval(this.retry);
    this.retry = null;
    await this.cnf.stop();
    await this.exclusive(() => this.rec.stop());
  }

  private networkOf(id: string): NetworkRow {
    const n = this.state.network(id);
    if (!n) throw new Refused(`network ${short(id)} not found`);
    return n;
  }

  private endpointOf(b: EndpointRef): EndpointRow {
    const e = this.state.endpoint(b.EndpointID);
    if (!e) throw new Refused(`endpoint ${short(b.EndpointID)} not found`);
    if (e.network !== b.NetworkID)
      throw new Refused(`endpoint ${short(b.EndpointID)} is not on network ${short(b.NetworkID)}`);
    return e;
  }
}
