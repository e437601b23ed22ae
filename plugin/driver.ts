// The "vale" network driver's behaviour, apart from HTTP: networks and endpoints (persisted), veths
// per endpoint, one switch per network. Operations run one at a time; each either completes (state
// row and veth both there) or leaves nothing behind.
import type { CreateEndpoint, CreateNetwork, EndpointRef, Join } from "./schemas.ts";
import { State, type EndpointRow, type NetworkRow } from "./state.ts";
import { createVeth, deleteVeth, linkExists, listOurs, macFor, vethNames } from "./veth.ts";
import { GSO_MAX_SIZE, MAX_MTU, datapathFactory, netmapAvailable, type Backend, type Datapath, type MakeDatapath } from "./datapath.ts";

export class DriverError extends Error {}

const GENERIC = "com.docker.network.generic";
const MTU_KEY = "com.docker.network.driver.mtu";

export interface DriverOptions {
  /** Datapath when a network does not choose one (--opt backend=...). */
  defaultBackend?: Backend;
  makeDatapath?: MakeDatapath;
  /** Where datapath events (a port taken off after an error) are reported. */
  log?: (msg: string) => void;
}

export class Driver {
  private readonly paths = new Map<string, Datapath>();
  private lock: Promise<unknown> = Promise.resolve();
  private readonly mk: MakeDatapath;
  private readonly closeDatapaths: () => Promise<void>;
  readonly defaultBackend: Backend;

  constructor(readonly state: State, opts: DriverOptions = {}) {
    const f = datapathFactory(opts.log);
    this.mk = opts.makeDatapath ?? f.make;
    this.closeDatapaths = f.close;
    this.defaultBackend = opts.defaultBackend ?? (netmapAvailable() ? "vale" : "packet");
  }

  /** Serialise operations: Docker may call concurrently, veths and workers must not interleave. */
  private exclusive<T>(f: () => Promise<T> | T): Promise<T> {
    const next = this.lock.then(f, f);
    this.lock = next.catch(() => undefined);
    return next;
  }

  activate() { return { Implements: ["NetworkDriver"] }; }
  capabilities() { return { Scope: "local", ConnectivityScope: "local" }; }

  createNetwork(b: CreateNetwork) {
    return this.exclusive(async () => {
      const generic = (b.Options?.[GENERIC] ?? {}) as Record<string, unknown>;
      if (typeof generic !== "object" || generic === null) throw new DriverError(`${GENERIC} must be an object`);
      const backend = String(generic.backend ?? this.defaultBackend) as Backend;
      if (!["packet", "xdp", "vale"].includes(backend)) throw new DriverError(`--opt backend=${backend}: use packet, xdp or vale`);
      if (backend === "vale" && !netmapAvailable()) throw new DriverError("--opt backend=vale needs /dev/netmap (the netmap kernel module); use backend=packet or xdp");
      const mtuRaw = generic[MTU_KEY] ?? generic.mtu ?? 1500;
      const mtu = Number(mtuRaw);
      if (!Number.isInteger(mtu) || mtu < 68 || mtu > 9000) throw new DriverError(`--opt ${MTU_KEY}=${String(mtuRaw)}: expected 68..9000`);
      // what a datapath cannot carry is refused here, never accepted and dropped later
      if (mtu > MAX_MTU[backend]) throw new DriverError(`--opt ${MTU_KEY}=${mtu}: the ${backend} datapath carries frames of MTU ${MAX_MTU[backend]} at most (use backend=packet for larger)`);
      const sw = String(generic.switch ?? generic.slice_id ?? `vale${b.NetworkID.slice(0, 6)}`);
      const name = /^vale/.test(sw) ? sw : `vale${sw}`;
      if (!/^vale[0-9A-Za-z_]{0,11}$/.test(name)) throw new DriverError(`--opt switch=${sw}: a switch name is vale followed by up to 11 letters, digits or _`);
      const gw = (b.IPv4Data?.[0]?.Gateway ?? "").split("/")[0];
      const have = this.state.network(b.NetworkID);
      if (have) return {}; // the engine retried: same network
      this.state.addNetwork({ id: b.NetworkID, switch: name, backend, mtu, gateway: gw, options: JSON.stringify(b.Options ?? {}), created: Date.now() });
      return {};
    });
  }

  deleteNetwork(b: { NetworkID: string }) {
    return this.exclusive(async () => {
      const n = this.need(b.NetworkID);
      const eps = this.state.endpoints(n.id);
      if (eps.length) throw new DriverError(`network ${n.id.slice(0, 12)} still has ${eps.length} endpoint(s)`);
      await this.paths.get(n.id)?.stop();
      this.paths.delete(n.id);
      this.state.deleteNetwork(n.id);
      return {};
    });
  }

  createEndpoint(b: CreateEndpoint) {
    return this.exclusive(async () => {
      const n = this.need(b.NetworkID);
      const given = b.Interface?.MacAddress ?? "";
      if (given && !/^([0-9a-f]{2}:){5}[0-9a-f]{2}$/i.test(given)) throw new DriverError(`MacAddress ${given} is not a MAC address`);
      const old = this.state.endpoint(b.EndpointID);
      if (old) {
        if (old.network !== n.id) throw new DriverError(`endpoint ${b.EndpointID.slice(0, 12)} belongs to another network`);
        return given ? { Interface: {} } : { Interface: { MacAddress: old.mac } };
      }
      const { host, cont } = vethNames(b.EndpointID);
      const mac = (given || macFor(b.EndpointID)).toLowerCase();
      if (linkExists(host)) deleteVeth(host); // an orphan from a crash before its row was written
      // packet: the switch carries GSO frames with their checksum state, so the container keeps its
      // offloads (GSO frames bounded to the switch's buffers); xdp: MTU-sized frames with real checksums
      createVeth(host, cont, mac, n.mtu, n.backend === "packet" ? { gsoMaxSize: GSO_MAX_SIZE } : { txChecksumOff: n.backend === "xdp" });
      try {
        this.state.addEndpoint({ id: b.EndpointID, network: n.id, host_if: host, cont_if: cont, mac, address: b.Interface?.Address ?? "", address6: b.Interface?.AddressIPv6 ?? "", joined: 0, sandbox: "" });
      } catch (e) {
        deleteVeth(host);
        throw e;
      }
      // fields the engine supplied must not come back (libnetwork refuses them)
      return given ? { Interface: {} } : { Interface: { MacAddress: mac } };
    });
  }

  endpointOperInfo(b: EndpointRef) {
    const e = this.needEp(b);
    return { Value: { host_interface: e.host_if, container_interface: e.cont_if, mac: e.mac, address: e.address, joined: !!e.joined } };
  }

  deleteEndpoint(b: EndpointRef) {
    return this.exclusive(async () => {
      const e = this.needEp(b);
      if (e.joined) await this.detach(e);
      deleteVeth(e.host_if); // gone already if the container's namespace went away: fine
      this.state.deleteEndpoint(e.id);
      return {};
    });
  }

  join(b: Join) {
    return this.exclusive(async () => {
      const e = this.needEp(b);
      const n = this.need(e.network);
      if (!linkExists(e.host_if)) throw new DriverError(`endpoint ${e.id.slice(0, 12)}: its veth ${e.host_if} is gone; remove and recreate the endpoint`);
      this.state.setJoined(e.id, true, b.SandboxKey);
      try {
        await this.sync(n);
      } catch (err) {
        this.state.setJoined(e.id, false);
        await this.sync(n).catch(() => undefined);
        throw new DriverError((err as Error).message);
      }
      const r: Record<string, unknown> = { InterfaceName: { SrcName: e.cont_if, DstPrefix: "eth" } };
      if (n.gateway) r.Gateway = n.gateway;
      return r;
    });
  }

  leave(b: EndpointRef) {
    return this.exclusive(async () => {
      const e = this.needEp(b);
      await this.detach(e);
      return {};
    });
  }

  private async detach(e: EndpointRow): Promise<void> {
    this.state.setJoined(e.id, false);
    const n = this.state.network(e.network);
    if (n) await this.sync(n);
  }

  /** Make the network's switch carry its joined endpoints whose veth exists. */
  private async sync(n: NetworkRow): Promise<void> {
    const ports = this.state.endpoints(n.id).filter((x) => x.joined && linkExists(x.host_if)).map((x) => x.host_if);
    let dp = this.paths.get(n.id);
    if (!dp) { dp = this.mk(n.backend as Backend, n.switch); this.paths.set(n.id, dp); }
    await dp.setPorts(ports);
  }

  /** After a restart: drop veths nobody owns, rebuild every network's switch. */
  restore() {
    return this.exclusive(async () => {
      const known = new Set(this.state.endpoints().map((e) => e.host_if));
      const orphans = listOurs().filter((h) => !known.has(h));
      for (const h of orphans) deleteVeth(h);
      for (const n of this.state.networks()) await this.sync(n);
      return { networks: this.state.networks().length, endpoints: known.size, orphansRemoved: orphans.length };
    });
  }

  view() {
    return this.state.networks().map((n) => ({
      id: n.id, switch: n.switch, backend: n.backend, mtu: n.mtu, gateway: n.gateway,
      endpoints: this.state.endpoints(n.id).map((e) => ({ id: e.id, host_interface: e.host_if, mac: e.mac, address: e.address, joined: !!e.joined })),
      ports: this.paths.get(n.id)?.counters() ?? [],
    }));
  }

  async shutdown(): Promise<void> {
    for (const dp of this.paths.values()) await dp.stop();
    this.paths.clear();
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
    if (e.network !== b.NetworkID) throw new DriverError(`endpoint ${b.EndpointID.slice(0, 12)} is not on network ${b.NetworkID.slice(0, 12)}`);
    return e;
  }
}
