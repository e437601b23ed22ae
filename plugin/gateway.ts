// A network's gateway: a veth pair whose host-stack end (vg…) holds the gateway addresses and whose
// other end (vs…) is a port of the network's switch, like any container's. The host reaches the
// containers through it, they reach the host, and routed traffic (NAT, published ports) crosses it.

import { readFileSync } from "node:fs";
import { BACKEND } from "./backends.ts";
import { isCniNetwork } from "./cni.ts";
import type { NetworkRow } from "./state.ts";
import {
  createVeth,
  deleteMarked,
  deleteVeth,
  ifSuffix,
  ip,
  ipBatch,
  linkExists,
  type Mark,
  macFor,
  markOf,
  markText,
  quietIpv6,
  type VethOptions,
} from "./veth.ts";

export const GW_HOST_PREFIX = "vg";
export const GW_SWITCH_PREFIX = "vs";

/** Interface names for a network's gateway (IFNAMSIZ 16: 2 + 12 hex). */
export function gatewayNames(networkId: string): { host: string; sw: string } {
  const h = ifSuffix(networkId);
  return { host: GW_HOST_PREFIX + h, sw: GW_SWITCH_PREFIX + h };
}

/** The MAC of a network's gateway (its host end, the station behind the switch end). A CNI network
 * has the same ID on every host (its config's name), and its hosts' gateways meet on one segment
 * over the uplink: the host's identity goes in too, so no two gateways share a MAC. */
export const gatewayMac = (networkId: string, instance: string) =>
  macFor(isCniNetwork(networkId) ? `gateway:${instance}:${networkId}` : `gateway:${networkId}`);

export interface GatewaySpec {
  networkId: string;
  /** the state's identity, for the interface's mark */
  instance: string;
  mtu: number;
  /** "a.b.c.d/len" or "" */
  v4: string;
  /** "x::y/len" or "" */
  v6: string;
  veth: VethOptions;
}

/** Create the gateway pair with its addresses, or nothing (an error says which step failed). */
export function createGateway(g: GatewaySpec): { host: string; sw: string } {
  const { host, sw } = gatewayNames(g.networkId);
  const mark: Mark = { instance: g.instance, kind: "gw", id: g.networkId };
  for (const name of [sw, host]) {
    if (!linkExists(name)) continue;
    const m = markOf(sw);
    // an orphan of ours from a crash before the network's row was written goes; anything else stays
    if (m && markText(m) === markText(mark)) deleteVeth(sw);
    else
      throw new Error(
        `interface ${name} exists and is not this network's gateway; it is left alone (rename or remove it)`,
      );
  }
  createVeth(sw, host, gatewayMac(g.networkId, g.instance), g.mtu, g.veth, mark);
  const steps: string[][] = [];
  if (!g.v6) steps.push(...quietIpv6(host));
  if (g.v4) steps.push(["addr", "add", g.v4, "dev", host]);
  if (g.v6) steps.push(["addr", "add", g.v6, "dev", host, "nodad"]); // the family is in the address (ip -batch takes no -6)
  steps.push(["link", "set", "dev", host, "up"]);
  const r = ipBatch(steps);
  if (r.failed >= 0) {
    deleteVeth(sw);
    throw new Error(`gateway ${host}: ip ${steps[r.failed].join(" ")}: ${r.err}`);
  }
  return { host, sw };
}

/** The gateway a stored network has: its addresses from the row, its veths as its backend wants. */
export function createGatewayOf(n: NetworkRow, instance: string): { host: string; sw: string } {
  const len = (cidr: string) => cidr.split("/")[1];
  return createGateway({
    networkId: n.id,
    instance,
    mtu: n.mtu,
    v4: n.gateway ? `${n.gateway}/${len(n.pool)}` : "",
    v6: n.gateway6 ? `${n.gateway6}/${len(n.pool6)}` : "",
    veth: BACKEND[n.backend].veth,
  });
}

export function deleteGateway(networkId: string, instance: string): void {
  deleteMarked(gatewayNames(networkId).sw, { instance, kind: "gw", id: networkId });
}

/** Is the kernel forwarding IPv4 (needed to route between a network's gateway and the outside)? */
export function ipv4Forwarding(): boolean {
  try {
    return readFileSync("/proc/sys/net/ipv4/ip_forward", "utf8").trim() === "1";
  } catch {
    return false;
  }
}

/** Forget the gateway's neighbour entry for an address whose endpoint leaves: its next holder may
 * have another MAC, and a stale entry would send the host's traffic to the old one for seconds. */
export function forgetNeighbour(networkId: string, address: string): void {
  const host = gatewayNames(networkId).host;
  if (!address || !linkExists(host)) return;
  const r = ip(["neigh", "del", address.split("/")[0], "dev", host]);
  if (!r.ok && !/No such file|not found/i.test(r.err)) throw new Error(`ip neigh del ${address} dev ${host}: ${r.err}`);
}
