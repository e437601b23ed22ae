// CNI attachments (POST /bunmap/cni, from the bunmap executable in /opt/cni/bin): a container's
// network namespace joined to a vale network by a veth pair, through the very operations Docker's
// calls go through (Driver: createNetwork, createEndpoint, join, deleteEndpoint, deleteNetwork), so
// both kinds of containers share networks, switches, gateways, NAT and uplinks.
//
// A CNI network is one the config names ("network": a Docker vale network's ID or prefix) or one of
// its own, `cni-NAME`, made from the config and the first address IPAM gives, and removed with its
// last attachment. Each attachment has a row, written before anything is made and given its result
// when ADD finishes: a process killed in the middle leaves a row without a result, and the next ADD
// (or DEL) for that container takes away whatever exists and starts again.
import { createHash } from "node:crypto";
import { existsSync, readFileSync } from "node:fs";
import type { CniAnswer, CniCall } from "../cni/proto.ts";
import { CniError, CODE, type NetConf, type Result, resultFor } from "../cni/spec.ts";
import { ipv4 } from "../src/index.ts";
import type { Driver } from "./driver.ts";
import { fault } from "./fault.ts";
import { lookInside, setUpInside } from "./netns.ts";
import { Refused, short } from "./refused.ts";
import { GENERIC, INTERNAL } from "./schemas.ts";
import type { CniRow, NetworkRow, State } from "./state.ts";
import { linkExists } from "./veth.ts";

/** The ID of a network made for CNI configs of this name. */
export const cniNetworkId = (name: string) => `cni-${name}`;
export const isCniNetwork = (id: string) => id.startsWith("cni-");

/** An attachment's endpoint ID: one per (network name, container, interface), as CNI keys them. */
export const cniEndpointId = (name: string, container: string, ifName: string) =>
  createHash("sha256").update(`cni\0${name}\0${container}\0${ifName}`).digest("hex");

/** A network's own switch name (Docker's networks take their ID's first digits; a name may not fit). */
const switchFor = (name: string) => `c${createHash("sha256").update(name).digest("hex").slice(0, 10)}`;

/** "a.b.c.d/len" -> its subnet "n.n.n.0/len". */
function subnetOf(cidr: string): string {
  const [a, l] = cidr.split("/");
  const len = Number(l);
  const mask = len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
  return `${ipv4.formatIPv4((ipv4.parseIPv4(a) & mask) >>> 0)}/${len}`;
}
const inSubnet = (addr: string, pool: string) => subnetOf(`${addr.split("/")[0]}/${pool.split("/")[1]}`) === pool;

export class CniAttachments {
  /** One CNI command at a time (each is several driver operations). */
  private lock: Promise<unknown> = Promise.resolve();

  constructor(
    private readonly driver: Driver,
    private readonly state: State,
  ) {}

  handle(call: CniCall): Promise<CniAnswer> {
    const next = this.lock.then(() => this.run(call));
    this.lock = next.catch(() => undefined);
    return next.catch((e) => ({ error: this.errorOf(e).object(call.conf.cniVersion) }));
  }

  private errorOf(e: unknown): CniError {
    if (e instanceof CniError) return e;
    if (e instanceof Refused) return new CniError(CODE.refused, e.message);
    return new CniError(CODE.io, `internal error: ${(e as Error).message}`);
  }

  private async run(call: CniCall): Promise<CniAnswer> {
    switch (call.command) {
      case "ADD": {
        const done = this.existing(call);
        if (done) return done;
        return { result: await this.add(call) };
      }
      case "DEL":
        await this.del(call);
        return { result: {} };
      case "CHECK":
        this.check(call);
        return { result: {} };
      case "GC":
        return { result: {}, removed: await this.gc(call.conf) };
      case "STATUS":
        return { result: {} };
    }
  }

  /** ADD of an attachment there whole: its result again. Else, without an address: ask for one. */
  private existing(call: CniCall): CniAnswer | null {
    const old = this.state.cniAttachment(cniEndpointId(call.conf.name, call.containerId, call.ifName));
    if (old?.result && old.netns === call.netns && this.broken(old, this.reach(call)) === null)
      return { result: resultFor(call.conf.cniVersion, JSON.parse(old.result) as Result) };
    return call.ipam ? null : { needAddress: true, stale: !!old };
  }

  /** The path the datapath reaches the container's namespace by: the executable's open descriptor
   * when this process can see it (same pid namespace), else the runtime's path. */
  private reach(call: CniCall): string {
    if (call.netnsFd) {
      const p = `/proc/${call.netnsFd.pid}/fd/${call.netnsFd.fd}`;
      if (existsSync(p)) return p;
    }
    return call.netns;
  }

  private async add(call: CniCall): Promise<Result> {
    const { conf } = call;
    const id = cniEndpointId(conf.name, call.containerId, call.ifName);
    const old = this.state.cniAttachment(id);
    if (old) await this.remove(old); // half-made (a crash) or broken: start again
    const ips = call.ipam?.ips ?? [];
    const v4 = ips.filter((i) => !i.address.includes(":"));
    if (v4.length !== 1 || ips.length !== 1)
      throw new CniError(
        CODE.invalidConfig,
        `IPAM plugin ${conf.ipam?.type} gave ${v4.length} IPv4 and ${ips.length - v4.length} IPv6 addresses: a vale network takes exactly one IPv4 address per container (IPv6 is not supported on CNI attachments yet)`,
      );
    const ip = v4[0];
    if (!/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(ip.address))
      throw new CniError(CODE.invalidConfig, `IPAM address ${ip.address} is not a.b.c.d/len`);
    const { net, own } = await this.networkFor(conf, ip.address, ip.gateway ?? "");
    const row: CniRow = {
      endpoint: id,
      network: net.id,
      name: conf.name,
      container: call.containerId,
      ifname: call.ifName,
      netns: call.netns,
      own: own ? 1 : 0,
      result: "",
    };
    this.state.addCniAttachment(row);
    fault("cni-add-row");
    try {
      const mac = conf.runtimeConfig?.mac;
      const netns = this.reach(call);
      await this.driver.createEndpoint(
        { NetworkID: net.id, EndpointID: id, Interface: { Address: ip.address, ...(mac ? { MacAddress: mac } : {}) } },
        netns,
      );
      const ep = this.state.endpoint(id)!;
      fault("cni-add-veth");
      const routed = !net.internal && !!net.gateway;
      const routes = call.ipam?.routes?.length
        ? call.ipam.routes.filter((r) => !r.dst.includes(":")).map((r) => ({ dst: r.dst, gw: r.gw ?? net.gateway }))
        : routed
          ? [{ dst: "default", gw: net.gateway }]
          : [];
      try {
        setUpInside(ep.cont_if, netns, { name: call.ifName, mtu: net.mtu, addresses: [ip.address], routes });
      } catch (e) {
        throw new CniError(CODE.refused, (e as Error).message);
      }
      fault("cni-add-moved");
      await this.driver.join({ NetworkID: net.id, EndpointID: id, SandboxKey: call.netns });
      const result = this.resultOf(call, ep.host_if, ep.mac, ip.address, net, routes);
      this.state.setCniResult(id, JSON.stringify(result));
      // a Docker network's rules now let portmap's DNAT in (its own network's always do)
      if (!own && net.gateway && !net.internal) await this.driver.refreshRouting();
      return resultFor(conf.cniVersion, result);
    } catch (e) {
      await this.remove(row).catch(() => undefined);
      await this.sweep().catch(() => undefined);
      throw e;
    }
  }

  private resultOf(
    call: CniCall,
    host: string,
    mac: string,
    address: string,
    net: NetworkRow,
    routes: { dst: string; gw?: string }[],
  ): Result {
    const prev = call.prevResult ?? {};
    const before = prev.interfaces ?? [];
    const hostMac = readFileSync(`/sys/class/net/${host}/address`, "utf8").trim();
    return {
      interfaces: [...before, { name: host, mac: hostMac }, { name: call.ifName, mac, sandbox: call.netns }],
      ips: [
        ...(prev.ips ?? []),
        { address, ...(net.gateway && !net.internal ? { gateway: net.gateway } : {}), interface: before.length + 1 },
      ],
      routes: [
        ...(prev.routes ?? []),
        ...routes.map((r) => ({ dst: r.dst === "default" ? "0.0.0.0/0" : r.dst, gw: r.gw })),
      ],
      dns: call.ipam?.dns ?? call.conf.dns ?? prev.dns ?? {},
    };
  }

  /** The network an ADD joins: the one the config names, or its own (made now if need be). */
  private async networkFor(
    conf: NetConf,
    address: string,
    gateway: string,
  ): Promise<{ net: NetworkRow; own: boolean }> {
    if (conf.network) {
      const all = this.state.networks().filter((n) => n.id === conf.network || n.id.startsWith(conf.network!));
      if (all.length !== 1)
        throw new CniError(
          CODE.invalidConfig,
          `network config /network: ${JSON.stringify(conf.network)} ${all.length ? `names ${all.length} networks; give more of the ID` : "is no network of this datapath (docker network ls --filter driver=vale shows them; or leave it out to have one made from this config)"}`,
        );
      const net = all[0];
      if (!net.pool || !inSubnet(address, net.pool))
        throw new CniError(
          CODE.invalidConfig,
          `IPAM address ${address} is outside network ${short(net.id)}'s subnet ${net.pool || "(none)"}`,
        );
      if (gateway && net.gateway && gateway !== net.gateway)
        throw new CniError(
          CODE.invalidConfig,
          `IPAM gateway ${gateway} is not network ${short(net.id)}'s gateway ${net.gateway}: set the range's gateway to it`,
        );
      const taken = this.state.endpoints(net.id).find((e) => e.address.split("/")[0] === address.split("/")[0]);
      if (taken)
        throw new CniError(
          CODE.invalidConfig,
          `IPAM address ${address} is held by endpoint ${short(taken.id)} of network ${short(net.id)}: give IPAM a range apart from Docker's (--ip-range, and host-local's rangeStart/rangeEnd)`,
        );
      return { net, own: false };
    }
    const id = cniNetworkId(conf.name);
    const generic = { ...conf.options };
    if (generic.switch === undefined && generic.slice_id === undefined) generic.switch = switchFor(conf.name);
    const pool = subnetOf(address);
    const have = this.state.network(id);
    if (have) {
      const was = JSON.parse(have.options) as Record<string, unknown>;
      const same =
        JSON.stringify(was[GENERIC] ?? {}) === JSON.stringify(generic) && !!have.internal === !!conf.internal;
      if (!same)
        throw new CniError(
          CODE.invalidConfig,
          `network ${id} runs with options ${JSON.stringify(was[GENERIC] ?? {})}${have.internal ? " (internal)" : ""}; this config asks for ${JSON.stringify(generic)}${conf.internal ? " (internal)" : ""}: every config of one network must agree`,
        );
      if (have.pool !== pool)
        throw new CniError(
          CODE.invalidConfig,
          `IPAM address ${address} is outside network ${id}'s subnet ${have.pool}`,
        );
      return { net: have, own: true };
    }
    const gw = gateway || "";
    try {
      await this.driver.createNetwork({
        NetworkID: id,
        Options: { [GENERIC]: generic, [INTERNAL]: !!conf.internal },
        IPv4Data: [{ Pool: pool, ...(gw ? { Gateway: `${gw}/${pool.split("/")[1]}` } : {}) }],
      });
    } catch (e) {
      if (e instanceof Refused) throw new CniError(CODE.invalidConfig, e.message.replaceAll("--opt ", "options."));
      throw e;
    }
    return { net: this.state.network(id)!, own: true };
  }

  /** What is wrong with an attachment now (null: as ADD left it). */
  private broken(a: CniRow, netns: string): string | null {
    const ep = this.state.endpoint(a.endpoint);
    if (!ep) return `its endpoint ${short(a.endpoint)} is gone`;
    if (!ep.joined) return `its endpoint ${short(a.endpoint)} is not attached to the switch`;
    if (!linkExists(ep.host_if)) return `its host interface ${ep.host_if} is gone`;
    const net = this.state.network(a.network);
    const ports = net ? (this.driver.view().find((n) => n.id === net.id)?.ports ?? []) : [];
    if (!ports.some((p) => p.port.includes(ep.host_if))) return `${ep.host_if} is not a port of switch ${net?.switch}`;
    const inside = lookInside(netns, a.ifname);
    if (!inside) return `interface ${a.ifname} is gone from ${a.netns}`;
    if (inside.mac !== ep.mac) return `interface ${a.ifname} has MAC ${inside.mac}, not ${ep.mac}`;
    if (!inside.up) return `interface ${a.ifname} is down`;
    if (!inside.addresses.includes(ep.address)) return `interface ${a.ifname} has lost its address ${ep.address}`;
    return null;
  }

  private check(call: CniCall): void {
    const id = cniEndpointId(call.conf.name, call.containerId, call.ifName);
    const a = this.state.cniAttachment(id);
    if (!a?.result)
      throw new CniError(
        CODE.attachmentBroken,
        `container ${short(call.containerId)} has no ${call.ifName} on network ${call.conf.name}: ADD it`,
      );
    const why = this.broken(a, this.reach(call));
    if (why)
      throw new CniError(
        CODE.attachmentBroken,
        `container ${short(call.containerId)} on network ${call.conf.name}: ${why}`,
      );
    const ep = this.state.endpoint(id)!;
    if (!(call.prevResult?.ips ?? []).some((i) => i.address === ep.address))
      throw new CniError(
        CODE.attachmentBroken,
        `prevResult does not hold the address ${ep.address} ADD gave ${call.ifName}`,
      );
  }

  private async del(call: CniCall): Promise<void> {
    const a = this.state.cniAttachment(cniEndpointId(call.conf.name, call.containerId, call.ifName));
    if (a) await this.remove(a); // DEL of what is not there succeeds, as the spec says
    await this.sweep();
  }

  /** A network of its own with nothing on it goes (one made just before a crash, ahead of its first row). */
  private async sweep(): Promise<void> {
    const held = new Set([
      ...this.state.cniAttachments().map((a) => a.network),
      ...this.state.endpoints().map((e) => e.network),
      ...this.state.cnfPorts().map((p) => p.network),
    ]);
    for (const n of this.state.networks())
      if (isCniNetwork(n.id) && !held.has(n.id)) await this.driver.deleteNetwork({ NetworkID: n.id });
  }

  /** GC: every attachment of this network the runtime no longer holds goes. */
  private async gc(conf: NetConf): Promise<{ containerID: string; ifname: string }[]> {
    const valid = new Set((conf["cni.dev/valid-attachments"] ?? []).map((v) => `${v.containerID}\0${v.ifname}`));
    const removed: { containerID: string; ifname: string }[] = [];
    for (const a of this.state.cniAttachments())
      if (a.name === conf.name && !valid.has(`${a.container}\0${a.ifname}`)) {
        await this.remove(a);
        removed.push({ containerID: a.container, ifname: a.ifname });
      }
    await this.sweep();
    return removed;
  }

  /** Take away whatever an attachment has (endpoint, veth, its network if its own and now empty), then its row. */
  private async remove(a: CniRow): Promise<void> {
    if (this.state.endpoint(a.endpoint))
      await this.driver.deleteEndpoint({ NetworkID: a.network, EndpointID: a.endpoint });
    this.state.deleteCniAttachment(a.endpoint);
    const net = this.state.network(a.network);
    const others = this.state.cniAttachments().some((x) => x.network === a.network);
    if (net && !a.own && !others && net.gateway && !net.internal) await this.driver.refreshRouting();
    if (
      net &&
      a.own &&
      !others &&
      !this.state.endpoints(net.id).length &&
      !this.state.cnfPorts().some((p) => p.network === net.id)
    )
      await this.driver.deleteNetwork({ NetworkID: net.id });
  }
}
