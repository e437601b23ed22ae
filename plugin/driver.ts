// The "vale" network driver's behaviour, apart from HTTP: networks and endpoints (persisted), veths
// per endpoint, one switch per network. Operations run one at a time; each either completes (state
// row and veth both there) or leaves nothing behind.

import { Value } from "@sinclair/typebox/value";
import {
  BACKENDS,
  type Backend,
  type Datapath,
  datapathFactory,
  GSO_MAX_SIZE,
  MAX_MTU,
  type MakeDatapath,
  netmapAvailable,
} from "./datapath.ts";
import { Firewall, type Published, type RoutedNet } from "./firewall.ts";
import { createGateway, deleteGateway, forgetNeighbour, gatewayNames, ipv4Forwarding } from "./gateway.ts";
import { Proxies } from "./proxy.ts";
import type { AllocateNetwork, CreateEndpoint, CreateNetwork, EndpointRef, Join } from "./schemas.ts";
import { type PortBinding, PortMap } from "./schemas.ts";
import type { Binding, EndpointRow, NetworkRow, State } from "./state.ts";
import { checkUplink, innerMtu, type Uplink, underlayMtu } from "./uplink.ts";
import { checkCidr, checkMac, checkMtu, checkOptions, checkPool } from "./validate.ts";
import {
  createVeth,
  deleteMarked,
  deleteVeth,
  linkExists,
  listMarked,
  type Mark,
  macFor,
  markOf,
  markText,
  type VethOptions,
  vethNames,
} from "./veth.ts";

export class DriverError extends Error {}

const GENERIC = "com.docker.network.generic";
const MTU_KEY = "com.docker.network.driver.mtu";
const INTERNAL = "com.docker.network.internal";
const PORTMAP = "com.docker.network.portmap";
/** Where a host port is chosen when -p gives none (Docker's own ephemeral range). */
const EPHEMERAL = [49153, 60999] as const;
const PROTO: Record<number, Binding["proto"]> = { 6: "tcp", 17: "udp", 132: "sctp" };

export interface DriverOptions {
  /** Datapath when a network does not choose one (--opt backend=...). */
  defaultBackend?: Backend;
  makeDatapath?: MakeDatapath;
  /** Where datapath events (a port taken off after an error) are reported. */
  log?: (msg: string) => void;
  /** NAT and published ports (default: iptables in this network namespace). */
  firewall?: Firewall;
  /** Userland proxies for published ports (default: on; null: none). */
  proxies?: Proxies | null;
  /** What GetCapabilities says: local (each engine allocates), or global (swarm managers allocate
   * addresses across nodes; Docker accepts that from managed plugins only, README). */
  scope?: "local" | "global";
}

/** A network's uplink, from the options it was created with (checked then). */
function uplinkOf(n: NetworkRow): Uplink | null {
  const generic = (JSON.parse(n.options) as Record<string, unknown>)[GENERIC] as Record<string, string> | undefined;
  return generic ? checkUplink(generic, n.backend as Backend, n.mtu) : null;
}

/** A routed network has a gateway port; an --internal one has none. */
const hasGateway = (n: NetworkRow) => !n.internal && !!(n.gateway || n.gateway6);

export class Driver {
  private readonly paths = new Map<string, Datapath>();
  private lock: Promise<unknown> = Promise.resolve();
  private readonly mk: MakeDatapath;
  private readonly closeDatapaths: () => Promise<void>;
  readonly defaultBackend: Backend;
  private readonly scope: "local" | "global";
  private readonly fw: Firewall;
  private readonly proxies: Proxies | null;

  constructor(
    readonly state: State,
    opts: DriverOptions = {},
  ) {
    const f = datapathFactory(opts.log);
    this.mk = opts.makeDatapath ?? f.make;
    this.closeDatapaths = f.close;
    this.defaultBackend = opts.defaultBackend ?? (netmapAvailable() ? "vale" : "packet");
    this.fw = opts.firewall ?? new Firewall(state.instance);
    this.proxies = opts.proxies === undefined ? new Proxies() : opts.proxies;
    this.scope = opts.scope ?? "local";
  }

  /** Serialise operations: Docker may call concurrently, veths and workers must not interleave. */
  private exclusive<T>(f: () => Promise<T> | T): Promise<T> {
    const next = this.lock.then(f, f);
    this.lock = next.catch(() => undefined);
    return next;
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
    const generic = checkOptions(b.Options ?? {});
    checkUplink(generic, (generic.backend ?? this.defaultBackend) as Backend);
    return { Options: generic };
  }

  createNetwork(b: CreateNetwork) {
    return this.exclusive(async () => {
      const generic = checkOptions(b.Options?.[GENERIC]);
      const backend = (generic.backend ?? this.defaultBackend) as Backend;
      if (!(BACKENDS as readonly string[]).includes(backend))
        throw new DriverError(`--opt backend=${backend}: use packet, xdp or vale`);
      if (backend === "vale" && !netmapAvailable())
        throw new DriverError(
          "--opt backend=vale needs /dev/netmap (the netmap kernel module); use backend=packet or xdp",
        );
      const mtuKey = generic[MTU_KEY] !== undefined ? MTU_KEY : "mtu";
      const uplink = checkUplink(generic, backend);
      // an uplink's frames grow by 50 bytes on the underlay: the network's MTU leaves room for that
      const under = uplink ? underlayMtu(uplink) : null;
      const room = under ? innerMtu(under.mtu) : 0;
      const mtu =
        generic[mtuKey] === undefined ? (under ? Math.min(1500, room) : 1500) : checkMtu(generic[mtuKey], mtuKey);
      if (under && mtu > room)
        throw new DriverError(
          `--opt ${mtuKey}=${mtu}: the uplink leaves by ${under.dev} (MTU ${under.mtu}) and VXLAN adds 50 bytes: ${room} at most`,
        );
      if (under && room < 68)
        throw new DriverError(
          `the uplink's interface ${under.dev} has MTU ${under.mtu}: too small for VXLAN (118 at least)`,
        );
      for (const [d, family] of [
        [b.IPv4Data, 4],
        [b.IPv6Data, 6],
      ] as const) {
        if ((d?.length ?? 0) > 1)
          throw new DriverError(`IPv${family}Data: a vale network takes one IPv${family} subnet (got ${d!.length})`);
        if (d?.[0]) checkPool(d[0].Pool, d[0].Gateway, family, `IPv${family}Data[0]`);
      }
      // what a datapath cannot carry is refused here, never accepted and dropped later
      if (mtu > MAX_MTU[backend])
        throw new DriverError(
          `--opt ${MTU_KEY}=${mtu}: the ${backend} datapath carries frames of MTU ${MAX_MTU[backend]} at most (use backend=packet for larger)`,
        );
      const sw = String(generic.switch ?? generic.slice_id ?? `vale${b.NetworkID.slice(0, 6)}`);
      const name = /^vale/.test(sw) ? sw : `vale${sw}`;
      if (!/^vale[0-9A-Za-z_]{0,11}$/.test(name))
        throw new DriverError(`--opt switch=${sw}: a switch name is vale followed by up to 11 letters, digits or _`);
      const have = this.state.network(b.NetworkID);
      if (have) return {}; // the engine retried: same network
      // networks with the same slice_id (or switch) share one switch, as VALE-docker's slices: alike
      const mate = this.state.networks().find((x) => x.switch === name);
      if (mate && (mate.backend !== backend || mate.mtu !== mtu)) {
        throw new DriverError(
          `--opt slice_id: switch ${name} already carries network ${mate.id.slice(0, 12)} with backend ${mate.backend} and MTU ${mate.mtu}; networks sharing a switch must match (this one: ${backend}, ${mtu})`,
        );
      }
      const linked = uplink && checkUplink(generic, backend, mtu);
      if (mate && uplinkOf(mate)?.port !== linked?.port)
        throw new DriverError(
          `--opt slice_id: switch ${name} already carries network ${mate.id.slice(0, 12)} with uplink ${uplinkOf(mate)?.port ?? "none"}; networks sharing a switch share its uplink (this one: ${linked?.port ?? "none"})`,
        );
      const sameVni = uplink && this.state.networks().find((x) => x.switch !== name && uplinkOf(x)?.vni === uplink.vni);
      if (sameVni)
        throw new DriverError(
          `--opt vni=${uplink.vni}: network ${sameVni.id.slice(0, 12)} on this host already uplinks that VNI (switch ${sameVni.switch}); give both the same slice_id to share its switch`,
        );
      const internal = b.Options?.[INTERNAL] === true || b.Options?.[INTERNAL] === "true";
      const v4 = b.IPv4Data?.[0],
        v6 = b.IPv6Data?.[0];
      const gw = (v4?.Gateway ?? "").split("/")[0],
        gw6 = (v6?.Gateway ?? "").split("/")[0];
      if (!internal && v4 && !ipv4Forwarding())
        throw new DriverError(
          "net.ipv4.ip_forward is 0, so the network's gateway could not route: enable it (sysctl -w net.ipv4.ip_forward=1, as Docker does) or create the network with --internal",
        );
      const row: NetworkRow = {
        id: b.NetworkID,
        switch: name,
        backend,
        mtu,
        gateway: gw,
        options: JSON.stringify(b.Options ?? {}),
        created: Date.now(),
        internal: internal ? 1 : 0,
        pool: v4?.Pool ?? "",
        gateway6: gw6,
        pool6: v6?.Pool ?? "",
      };
      // the gateway's addresses live on a host interface that is a port of the switch
      const gwPort = hasGateway(row);
      // an uplinked switch runs from the start: the other hosts' containers may already be there
      if (gwPort) {
        try {
          this.makeGateway(row);
        } catch (e) {
          throw new DriverError(`network ${row.id.slice(0, 12)}: ${(e as Error).message}`);
        }
      }
      try {
        this.state.addNetwork(row);
        if (gwPort || uplink) await this.sync(row);
        if (gwPort) await this.applyRouting();
      } catch (e) {
        this.state.deleteNetwork(row.id);
        await this.sync(row).catch(() => undefined); // the switch carries what is left on it, or stops
        if (gwPort) deleteGateway(row.id, this.state.instance);
        await this.applyRouting().catch(() => undefined);
        throw new DriverError(`network ${row.id.slice(0, 12)}: ${(e as Error).message}`);
      }
      return {};
    });
  }

  deleteNetwork(b: { NetworkID: string }) {
    return this.exclusive(async () => {
      const n = this.need(b.NetworkID);
      const eps = this.state.endpoints(n.id);
      if (eps.length) throw new DriverError(`network ${n.id.slice(0, 12)} still has ${eps.length} endpoint(s)`);
      this.state.deleteNetwork(n.id);
      await this.sync(n); // the shared switch goes on with the other networks' ports, or stops
      deleteGateway(n.id, this.state.instance);
      await this.applyRouting();
      return {};
    });
  }

  createEndpoint(b: CreateEndpoint) {
    return this.exclusive(async () => {
      const n = this.need(b.NetworkID);
      const given = b.Interface?.MacAddress ? checkMac(b.Interface.MacAddress, "Interface.MacAddress") : "";
      if (b.Interface?.Address) checkCidr(b.Interface.Address, 4, "Interface.Address");
      if (b.Interface?.AddressIPv6) checkCidr(b.Interface.AddressIPv6, 6, "Interface.AddressIPv6");
      const old = this.state.endpoint(b.EndpointID);
      if (old) {
        if (old.network !== n.id)
          throw new DriverError(`endpoint ${b.EndpointID.slice(0, 12)} belongs to another network`);
        return given ? { Interface: {} } : { Interface: { MacAddress: old.mac } };
      }
      const mac = (given || macFor(b.EndpointID, b.Interface?.Address ?? "")).toLowerCase();
      const mark: Mark = { instance: this.state.instance, kind: "ep", id: b.EndpointID };
      const { host, cont } = this.freeNames(mark);
      try {
        createVeth(host, cont, mac, n.mtu, this.vethOptions(n.backend as Backend), mark);
      } catch (e) {
        throw new DriverError(`endpoint ${b.EndpointID.slice(0, 12)}: ${(e as Error).message}`);
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

  private makeGateway(n: NetworkRow): void {
    const len = (cidr: string) => cidr.split("/")[1];
    createGateway({
      networkId: n.id,
      instance: this.state.instance,
      mtu: n.mtu,
      v4: n.gateway ? `${n.gateway}/${len(n.pool)}` : "",
      v6: n.gateway6 ? `${n.gateway6}/${len(n.pool6)}` : "",
      veth: this.vethOptions(n.backend as Backend),
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
    throw new DriverError(`endpoint ${mark.id.slice(0, 12)}: no free interface name after 16 tries`);
  }

  /** packet: the switch carries GSO frames with their checksum state, so the container keeps its
   * offloads (GSO frames bounded to the switch's buffers); xdp: MTU-sized frames with real checksums */
  private vethOptions(backend: Backend): VethOptions {
    return backend === "packet" ? { gsoMaxSize: GSO_MAX_SIZE } : { txChecksumOff: backend === "xdp" };
  }

  endpointOperInfo(b: EndpointRef) {
    const e = this.needEp(b);
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
  programExternalConnectivity(b: EndpointRef & { Options?: Record<string, unknown> | null }) {
    return this.exclusive(async () => {
      const e = this.needEp(b);
      const n = this.need(e.network);
      const raw = b.Options?.[PORTMAP] ?? [];
      if (!Value.Check(PortMap, raw)) {
        const first = [...Value.Errors(PortMap, raw)][0];
        throw new DriverError(`Options.${PORTMAP}${first?.path ?? ""}: ${first?.message ?? "invalid"}`);
      }
      const want = raw.filter((p) => !(p.HostIP ?? "").includes(":")); // IPv6 host addresses: IPv4 NAT only (README)
      if (want.length && (n.internal || !n.pool))
        throw new DriverError(`network ${n.id.slice(0, 12)} is internal: it publishes no ports`);
      if (want.length && !e.address)
        throw new DriverError(`endpoint ${e.id.slice(0, 12)} has no IPv4 address to publish ports to`);
      const taken = this.state
        .endpoints()
        .filter((x) => x.id !== e.id)
        .flatMap((x) => this.state.ports(x).map((p) => ({ ...p, ep: x.id })));
      const chosen: Binding[] = [];
      for (const p of want) chosen.push(this.bindPort(p, [...taken, ...chosen.map((c) => ({ ...c, ep: e.id }))]));
      this.state.setPorts(e.id, chosen);
      try {
        await this.applyRouting();
      } catch (err) {
        // nothing of this endpoint's stays published (rules and proxies back to the others' only)
        this.state.setPorts(e.id, []);
        await this.applyRouting().catch(() => undefined);
        throw err;
      }
      return {};
    });
  }

  /** A binding with its host port: the one asked for, or the first free one in its range (or ours). */
  private bindPort(p: PortBinding, taken: (Binding & { ep: string })[]): Binding {
    const proto = PROTO[p.Proto];
    if (!proto) throw new DriverError(`Options.${PORTMAP}: protocol ${p.Proto} is not tcp (6), udp (17) or sctp (132)`);
    const hostIp = p.HostIP === "0.0.0.0" ? "" : (p.HostIP ?? "");
    const [lo, hi] = p.HostPort ? [p.HostPort, Math.max(p.HostPort, p.HostPortEnd ?? 0)] : EPHEMERAL;
    const clash = (port: number) =>
      taken.find((t) => t.proto === proto && t.hostPort === port && (!t.hostIp || !hostIp || t.hostIp === hostIp));
    for (let port = lo; port <= hi; port++) if (!clash(port)) return { proto, hostIp, hostPort: port, port: p.Port };
    const c = clash(lo)!;
    throw new DriverError(
      lo === hi
        ? `port ${hostIp || "0.0.0.0"}:${lo}/${proto} is already published for endpoint ${c.ep.slice(0, 12)}`
        : `no free host port in ${lo}-${hi}/${proto}`,
    );
  }

  revokeExternalConnectivity(b: EndpointRef) {
    return this.exclusive(async () => {
      const e = this.needEp(b);
      await this.unpublish(e);
      return {};
    });
  }

  private async unpublish(e: EndpointRow): Promise<void> {
    if (!this.state.ports(e).length) return;
    this.state.setPorts(e.id, []);
    await this.applyRouting();
  }

  /** Write the NAT and filter rules every routed network and published port needs now, and run the
   * proxies for published TCP and UDP ports (loopback and hairpin clients). */
  private async applyRouting(): Promise<void> {
    const routed = this.state.networks().filter((n) => !n.internal && n.pool && n.gateway);
    const nets: RoutedNet[] = routed.map((n) => ({ bridge: gatewayNames(n.id).host, subnet: n.pool }));
    const pubs: Published[] = routed.flatMap((n) =>
      this.state
        .endpoints(n.id)
        .flatMap((e) =>
          this.state.ports(e).map((p) => ({ ...p, bridge: gatewayNames(n.id).host, ip: e.address.split("/")[0] })),
        ),
    );
    try {
      this.fw.apply(nets, pubs);
    } catch (e) {
      throw new DriverError(`firewall: ${(e as Error).message}`);
    }
    if (!this.proxies) return;
    try {
      await this.proxies.sync(pubs.flatMap((p) => (p.proto === "sctp" ? [] : [{ ...p, proto: p.proto }])));
    } catch (e) {
      throw new DriverError((e as Error).message);
    }
  }

  deleteEndpoint(b: EndpointRef) {
    return this.exclusive(async () => {
      const e = this.needEp(b);
      if (e.joined) await this.detach(e);
      await this.unpublish(e);
      // ours by its mark; gone already if the container's namespace went away: fine
      deleteMarked(e.host_if, { instance: this.state.instance, kind: "ep", id: e.id });
      for (const a of [e.address, e.address6]) forgetNeighbour(e.network, a);
      this.state.deleteEndpoint(e.id);
      return {};
    });
  }

  join(b: Join) {
    return this.exclusive(async () => {
      const e = this.needEp(b);
      const n = this.need(e.network);
      if (!linkExists(e.host_if))
        throw new DriverError(
          `endpoint ${e.id.slice(0, 12)}: its veth ${e.host_if} is gone; remove and recreate the endpoint`,
        );
      this.state.setJoined(e.id, true, b.SandboxKey);
      try {
        await this.sync(n);
      } catch (err) {
        this.state.setJoined(e.id, false);
        await this.sync(n).catch(() => undefined);
        throw new DriverError((err as Error).message);
      }
      const r: Record<string, unknown> = { InterfaceName: { SrcName: e.cont_if, DstPrefix: "eth" } };
      // --internal: no gateway, so no default route (Docker attaches no fallback gateway bridge either)
      if (!n.internal && n.gateway) r.Gateway = n.gateway;
      if (!n.internal && n.gateway6) r.GatewayIPv6 = n.gateway6;
      return r;
    });
  }

  leave(b: EndpointRef) {
    return this.exclusive(async () => {
      const e = this.needEp(b);
      await this.unpublish(e);
      await this.detach(e);
      return {};
    });
  }

  private async detach(e: EndpointRow): Promise<void> {
    this.state.setJoined(e.id, false);
    const n = this.state.network(e.network);
    if (n) await this.sync(n);
  }

  /** Make the network's switch carry the gateways and joined endpoints (whose veth exists) of every
   * network on it (one, or all of a slice); a switch with no network left stops. */
  private async sync(n: NetworkRow): Promise<void> {
    const nets = this.state.networks().filter((x) => x.switch === n.switch);
    let dp = this.paths.get(n.switch);
    if (!nets.length) {
      await dp?.stop();
      this.paths.delete(n.switch);
      return;
    }
    const ports: string[] = [];
    for (const x of nets) {
      const gw = gatewayNames(x.id).sw;
      if (hasGateway(x) && linkExists(gw)) ports.push(gw);
      ports.push(
        ...this.state
          .endpoints(x.id)
          .filter((e) => e.joined && linkExists(e.host_if))
          .map((e) => e.host_if),
      );
    }
    if (!dp) {
      dp = this.mk(n.backend as Backend, n.switch);
      this.paths.set(n.switch, dp);
    }
    await dp.setPorts(ports, uplinkOf(nets[0])?.port ?? null);
  }

  /** After a restart: drop veths nobody owns, rebuild every network's switch. */
  restore() {
    return this.exclusive(async () => {
      // only interfaces marked with this state's identity, for something the state does not hold
      const eps = new Map(this.state.endpoints().map((e) => [e.id, e.host_if]));
      const gws = new Set(
        this.state
          .networks()
          .filter(hasGateway)
          .map((n) => gatewayNames(n.id).sw),
      );
      const orphans = listMarked(this.state.instance).filter((m) =>
        m.kind === "ep" ? eps.get(m.id) !== m.name : !(gws.has(m.name) && gatewayNames(m.id).sw === m.name),
      );
      for (const o of orphans) deleteVeth(o.name);
      for (const n of this.state.networks()) {
        // a gateway lost with the host's interfaces (a reboot) comes back with its addresses
        if (hasGateway(n) && !linkExists(gatewayNames(n.id).sw)) this.makeGateway(n);
        await this.sync(n);
      }
      await this.applyRouting();
      return {
        networks: this.state.networks().length,
        endpoints: this.state.endpoints().length,
        orphansRemoved: orphans.length,
      };
    });
  }

  view() {
    return this.state.networks().map((n) => ({
      id: n.id,
      switch: n.switch,
      backend: n.backend,
      mtu: n.mtu,
      gateway: n.gateway,
      gateway6: n.gateway6,
      internal: !!n.internal,
      gateway_interface: hasGateway(n) ? gatewayNames(n.id).host : null,
      uplink: uplinkOf(n),
      endpoints: this.state.endpoints(n.id).map((e) => ({
        id: e.id,
        host_interface: e.host_if,
        mac: e.mac,
        address: e.address,
        joined: !!e.joined,
        ports: this.state.ports(e),
      })),
      ports: this.paths.get(n.switch)?.counters() ?? [],
    }));
  }

  async shutdown(): Promise<void> {
    for (const dp of this.paths.values()) await dp.stop();
    this.paths.clear();
    this.proxies?.close();
    await this.closeDatapaths();
  }

  private need(id: string): NetworkRow {
    const n = this.state.network(id);
    if (!n) throw new DriverError(`network ${id.slice(0, 12)} not found`);
    return n;
  }

  private needEp(b: EndpointRef): EndpointRow {
    const e = this.state.endpoint(b.EndpointID);
    if (!e) throw new DriverError(`endpoint ${b.EndpointID.slice(0, 12)} not found`);
    if (e.network !== b.NetworkID)
      throw new DriverError(`endpoint ${b.EndpointID.slice(0, 12)} is not on network ${b.NetworkID.slice(0, 12)}`);
    return e;
  }
}
